#!/usr/bin/env bash
# The DR story end to end against a local AWS emulator (moto), printing what happened.
# Installs its tools first (scripts/setup.sh); needs no AWS account and no network once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --quiet --locked -p lifeboat-tests --bin lifeboat-demo
