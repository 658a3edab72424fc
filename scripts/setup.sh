#!/usr/bin/env bash
# Install what the tests and the demo need into .venv (git-ignored): the moto AWS emulator,
# freezegun (its movable clock), cargo-lambda (the Lambda runtime emulator), cfn-lint and aws-sam-cli.
# Then the Node tools (asl-validator, playwright-core) from scripts/npm's lockfile, and Debian's
# Chromium for the approval page's browser test.
# Idempotent: does nothing when .venv and scripts/npm/node_modules already match their pins.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian's chromium (the approval page's browser test)" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
fi
npm_stamp=scripts/npm/node_modules/.lock.sha
npm_want=$(sha256sum scripts/npm/package-lock.json | cut -d' ' -f1)
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_want" ]; then
  echo "setup: installing Node test tools (asl-validator, playwright-core) into scripts/npm/node_modules" >&2
  npm ci --prefix scripts/npm --silent --no-audit --no-fund
  echo "$npm_want" > "$npm_stamp"
fi
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
