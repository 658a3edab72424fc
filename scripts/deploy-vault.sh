#!/usr/bin/env bash
# Deploy Lifeboat's vault (infra/vault.yaml) with the VAULT account's credentials, in the vault's
# region (docs/vault.md, "Deploying, step by step"):
#   scripts/deploy-vault.sh SourceAccountId=... SourceRegion=... SourceShareKeyArn=... AlarmTopicArn=... \
#     VaultKmsKeyArn=... [MinimumRetentionDays=30] [RestoreAccountIds=...] [more parameters]
# Builds vault-keeper for arm64 (sam build, cargo-lambda), then deploys the stack `lifeboat-vault`
# (LIFEBOAT_VAULT_STACK to change it). The lock, MinimumRetentionDays, is this stack's; with the
# guardrail SCP attached (infra/vault-guardrail.yaml), only the management account can lift it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
build=.aws-sam/vault
sam build --template-file infra/vault.yaml --build-dir "$build"
sam deploy --template-file "$build/template.yaml" --stack-name "${LIFEBOAT_VAULT_STACK:-lifeboat-vault}" \
  --capabilities CAPABILITY_IAM --resolve-s3 --no-fail-on-empty-changeset --parameter-overrides "$@"
