#!/usr/bin/env bash
# Deploy Lifeboat with the AWS credentials of this shell:
#   scripts/deploy.sh path/to/lifeboat.yaml [sam deploy options...]
#   LIFEBOAT_REGIONS="us-east-1 us-west-2" scripts/deploy.sh path/to/lifeboat.yaml
# 1. stores the policy document in SSM (/lifeboat/config, or $LIFEBOAT_CONFIG_PARAM) in every
#    region deployed to — first, because each function reads it at init and refuses to start
#    without a valid one;
# 2. builds the functions for arm64 with cargo-lambda (`sam build`, about 5 minutes);
# 3. runs the guided `sam deploy` in each region (it asks for NotificationTopicArn — that region's
#    topic —, DrKmsKeyArns — key ARNs, not aliases — and the schedules, and remembers the answers
#    in samconfig.toml). With several regions each stack runs only the recoveries it owns
#    (Recovers=own): a database's recovery runs where its replica or DR copy lives, so it still
#    runs when the primary's region is gone (docs/deployment.md, "Two regions").
# 4. with several regions, deploys infra/forward-rds-events.yaml in each, aimed at each other one:
#    alarms going into ALARM (those that start failovers, and Lifeboat's own) reach the stack
#    that owns the recovery, and its topic, while their region is up.
# Source regions without a stack also need infra/forward-rds-events.yaml (docs/deployment.md).
# Before building or deploying anything, it refuses a config whose vault would receive copies from
# the stacks of several regions (scripts/vault-senders.py, docs/vault.md) and prints each vault's SourceRegion.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: scripts/deploy.sh path/to/lifeboat.yaml [sam deploy options]}
shift
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
param=${LIFEBOAT_CONFIG_PARAM:-/lifeboat/config}
read -r -a regions <<< "${LIFEBOAT_REGIONS:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}"
[ "${#regions[@]}" -gt 0 ] || { echo "deploy: set AWS_REGION or LIFEBOAT_REGIONS" >&2; exit 2; }
recovers=all
[ "${#regions[@]}" -eq 1 ] || recovers=own
# A vault stack answers one SourceRegion: refuse a vault that several regions would send to.
python scripts/vault-senders.py "$config" "${regions[@]}"
sam build
for region in "${regions[@]}"; do
  python - "$config" "$param" "$region" <<'PY'
import sys, boto3
path, name, region = sys.argv[1:4]
boto3.client("ssm", region_name=region).put_parameter(Name=name, Value=open(path).read(), Type="String", Overwrite=True)
print(f"deploy: {path} stored in SSM {name} in {region}")
PY
  sam deploy --guided --region "$region" --capabilities CAPABILITY_IAM \
    --parameter-overrides "ConfigParameterName=$param" "Recovers=$recovers" "$@"
done
[ "${#regions[@]}" -gt 1 ] || exit 0
for region in "${regions[@]}"; do
  for other in "${regions[@]}"; do
    [ "$other" != "$region" ] || continue
    sam deploy --template-file infra/forward-rds-events.yaml --stack-name "lifeboat-forward-to-$other" \
      --region "$region" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
      --parameter-overrides "LifeboatRegion=$other"
  done
done
