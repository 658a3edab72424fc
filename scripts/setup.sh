#!/usr/bin/env bash
# Install what the tests and the demo need into .venv (git-ignored): the moto AWS emulator,
# freezegun (its movable clock), cargo-lambda (the Lambda runtime emulator), cfn-lint and aws-sam-cli.
# Then the Node tools (asl-validator, playwright-core) from scripts/npm's lockfile, Debian's
# Chromium for the approval page's browser test, and Debian's PostgreSQL and MariaDB, whose
# programs the emulator runs as the real databases behind its RDS instances (it starts its own
# servers; the Debian services are not used).
# Idempotent: does nothing when .venv and scripts/npm/node_modules already match their pins and
# the Debian packages' programs are there.
set -euo pipefail
cd "$(dirname "$0")/.."
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "$@" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "$@" >/dev/null; }
}
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian's chromium (the approval page's browser test)" >&2
  apt_install chromium
fi
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || [ ! -x /usr/bin/pg_dumpall ]; then
  echo "setup: installing Debian's postgresql (the emulator's real PostgreSQL servers)" >&2
  apt_install postgresql postgresql-client
fi
if [ ! -x /usr/sbin/mariadbd ] || [ ! -x /usr/bin/mariadb-install-db ] || [ ! -x /usr/bin/mariadb-dump ]; then
  echo "setup: installing Debian's mariadb-server (the emulator's real MariaDB servers)" >&2
  apt_install mariadb-server mariadb-client
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
