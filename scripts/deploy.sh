#!/usr/bin/env bash
# Deploy Lifeboat with the AWS credentials of this shell:
#   scripts/deploy.sh path/to/lifeboat.yaml [sam deploy options...]
#   LIFEBOAT_REGIONS="us-east-1 us-west-2" scripts/deploy.sh path/to/lifeboat.yaml
#   LIFEBOAT_CONFIG_OBJECT=s3://lifeboat-config-{region}/lifeboat.yaml scripts/deploy.sh lifeboat.yaml
# 1. stores the policy document in every region deployed to — first, because each function reads
#    it at init and refuses to start without a valid one: in SSM (/lifeboat/config, or
#    $LIFEBOAT_CONFIG_PARAM; Intelligent-Tiering, so Advanced only past Standard's 4 KB), or, with
#    LIFEBOAT_CONFIG_OBJECT, in that S3 object of the region ({region} in it names each region's
#    own bucket; SSE-KMS with $LIFEBOAT_CONFIG_KMS_KEY, also passed as ConfigParameterKmsKeyArn),
#    passed as ConfigObject. Before building anything it refuses a document its store can't hold
#    (an SSM parameter: 8,192 bytes, about 16 databases; docs/configuration.md);
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
object=${LIFEBOAT_CONFIG_OBJECT:-}
config_key=${LIFEBOAT_CONFIG_KMS_KEY:-}
read -r -a regions <<< "${LIFEBOAT_REGIONS:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}"
[ "${#regions[@]}" -gt 0 ] || { echo "deploy: set AWS_REGION or LIFEBOAT_REGIONS" >&2; exit 2; }
recovers=all
[ "${#regions[@]}" -eq 1 ] || recovers=own
# The document must fit where it goes (config::store_limit, as `lifeboat check` says it).
python - "$config" "$object" "${#regions[@]}" <<'PY'
import re, sys
path, obj, regions = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = len(open(path, "rb").read())
# "Standard parameters have a value limit of 4 KB. Advanced parameters have a value limit of
# 8 KB." (SSM API reference, PutParameter.) Bytes, the stricter reading of SSM's "characters".
if not obj and size > 8192:
    sys.exit(f"deploy: {path} is {size:,} bytes; an SSM parameter holds 8,192 (Advanced): store it in S3 "
             "(LIFEBOAT_CONFIG_OBJECT=s3://bucket/key, the stack's ConfigObject)")
if obj and size > 4 * 1024 * 1024:
    sys.exit(f"deploy: {path} is {size:,} bytes; Lifeboat reads at most 4,194,304: split the fleet between stacks")
if obj and not re.fullmatch(r"s3://[^/]+/.+", obj):
    sys.exit(f"deploy: LIFEBOAT_CONFIG_OBJECT is {obj!r}: expected s3://bucket/key")
# A stack reads its config at every cold start: from its own region, so a recovery never waits
# on the region it recovers from.
if obj and regions > 1 and "{region}" not in obj.split("/")[2]:
    sys.exit("deploy: with several regions, LIFEBOAT_CONFIG_OBJECT needs {region} in its bucket "
             "(s3://lifeboat-config-{region}/lifeboat.yaml): each stack reads a bucket of its own region")
PY
# A vault stack answers one SourceRegion: refuse a vault that several regions would send to.
python scripts/vault-senders.py "$config" "${regions[@]}"
sam build
for region in "${regions[@]}"; do
  url=${object//\{region\}/$region}
  key=${config_key//\{region\}/$region}
  if [ -n "$url" ]; then
    python - "$config" "$url" "$region" "$key" <<'PY'
import sys, boto3
path, url, region, key = sys.argv[1:5]
bucket, _, name = url[len("s3://"):].partition("/")
s3 = boto3.client("s3", region_name=region)
# GetBucketLocation answers no LocationConstraint for us-east-1.
where = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
if where != region:
    sys.exit(f"deploy: bucket {bucket} is in {where}: the {region} stack reads its config from {region}")
sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key} if key else {}
s3.put_object(Bucket=bucket, Key=name, Body=open(path, "rb").read(), **sse)
print(f"deploy: {path} stored in {url}")
PY
  else
    python - "$config" "$param" "$region" <<'PY'
import sys, boto3
path, name, region = sys.argv[1:4]
boto3.client("ssm", region_name=region).put_parameter(
    Name=name, Value=open(path).read(), Type="String", Tier="Intelligent-Tiering", Overwrite=True)
print(f"deploy: {path} stored in SSM {name} in {region}")
PY
  fi
  sam deploy --guided --region "$region" --capabilities CAPABILITY_IAM \
    --parameter-overrides "ConfigParameterName=$param" "ConfigObject=$url" "Recovers=$recovers" \
    ${key:+"ConfigParameterKmsKeyArn=$key"} "$@"
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
