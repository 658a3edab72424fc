#!/usr/bin/env bash
# Every test: installs the tools (scripts/setup.sh), lints the SAM template, then the whole
# workspace's unit, property and emulator-backed tests. One build profile (debug) on purpose:
# a second profile would double the cold build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "test: cfn-lint template.yaml" >&2
AWS_DEFAULT_REGION=us-east-1 .venv/bin/cfn-lint template.yaml
echo "test: cargo test --workspace" >&2
cargo test --workspace --locked
