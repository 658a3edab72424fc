#!/usr/bin/env bash
# Deploy Lifeboat with the AWS credentials and region of this shell:
#   scripts/deploy.sh path/to/lifeboat.yaml [sam deploy options...]
# 1. stores the policy document in SSM (/lifeboat/config, or $LIFEBOAT_CONFIG_PARAM) — first,
#    because each function reads it at init and refuses to start without a valid one;
# 2. builds both functions for arm64 with cargo-lambda (`sam build`, about 5 minutes);
# 3. runs the guided `sam deploy` (it asks for NotificationTopicArn, DrKmsKeyArns — key ARNs,
#    not aliases — and the schedules, and remembers the answers in samconfig.toml).
# Source regions other than the stack's also need infra/forward-rds-events.yaml (docs/deployment.md).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: scripts/deploy.sh path/to/lifeboat.yaml [sam deploy options]}
shift
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
param=${LIFEBOAT_CONFIG_PARAM:-/lifeboat/config}
python - "$config" "$param" <<'PY'
import sys, boto3
path, name = sys.argv[1], sys.argv[2]
boto3.client("ssm").put_parameter(Name=name, Value=open(path).read(), Type="String", Overwrite=True)
print(f"deploy: {path} stored in SSM {name}")
PY
sam build
sam deploy --guided --capabilities CAPABILITY_IAM --parameter-overrides "ConfigParameterName=$param" "$@"
