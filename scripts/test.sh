#!/usr/bin/env bash
# Every test: installs the tools (scripts/setup.sh), lints the SAM template as SAM and as
# CloudFormation, then the whole workspace's unit, property and emulator-backed tests. One build
# profile (debug) on purpose: a second profile would double the cold build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0
echo "test: sam validate --lint template.yaml infra/vault.yaml" >&2
.venv/bin/sam validate --lint --template template.yaml
.venv/bin/sam validate --lint --template infra/vault.yaml
echo "test: cfn-lint template.yaml infra/*.yaml" >&2
.venv/bin/cfn-lint template.yaml infra/*.yaml
echo "test: asl-validator infra/*.asl.json" >&2
for asl in infra/*.asl.json; do scripts/npm/node_modules/.bin/asl-validator --json-path "$asl"; done
echo "test: cargo test --workspace" >&2
cargo test --workspace --locked
