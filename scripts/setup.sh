#!/usr/bin/env bash
# Install what the tests and the demo need into .venv (git-ignored): the moto AWS emulator,
# freezegun (its movable clock), cargo-lambda (the Lambda runtime emulator), cfn-lint and aws-sam-cli.
# Idempotent: does nothing when .venv already matches scripts/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements.sha
want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: installing test tools into .venv (moto, freezegun, cargo-lambda, cfn-lint, aws-sam-cli)" >&2
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r scripts/requirements.txt
echo "$want" > "$stamp"
