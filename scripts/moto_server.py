"""Start moto's AWS emulator on a free loopback port, with a clock tests can move, and the rules of
the AWS API references that moto skips.

Prints `PORT <n>` once it listens. Runs moto in-process under freezegun so retention tests can
seed snapshots "months ago": POST /_lifeboat/clock {"now": "<ISO-8601>"} moves the emulator's
clock, which then ticks on in real time. moto has no fault injection, so POST /_lifeboat/faults
{"faults": [...]} injects them (see `Faults`: per service and operation, at a rate from a seed,
throttling, 503s or slow answers; {"action": "DeleteDBSnapshot", "target": "<identifier>",
"code": "Throttling"} is one operation on one resource) until replaced; GET /_lifeboat/faults
counts the calls and the faults injected.
moto finishes every copy at once; POST /_lifeboat/rds/snapshot-status {"region", "kind": "db" |
"cluster", "id", "status", "account"? (default 123456789012)} puts a snapshot in the state a real
copy can end in (`failed`).

moto is laxer than AWS. `STRICT_RULES` below refuse, before moto sees them, the calls the RDS API
reference says AWS refuses; each rule quotes the sentence it encodes, and acts in the caller's
account (`caller_account`: credentials from sts:AssumeRole act in the role's account). Across
accounts: only a manual snapshot is shared (attribute `restore`), an encrypted one never with `all`
nor under its account's default KMS key; another account copies it (by its ARN) only when it is
shared with it, naming a KmsKeyId if it is encrypted, whose key policy must let it kms:CreateGrant,
and a cluster snapshot only in its own region; a snapshot is deleted only by its owner. So that such
a copy is made, and IncludeShared lists what is shared, moto is patched (`rds_across_accounts`).
Everything else is moto's own server app, unchanged.

Lambda tasks of Step Functions, run by moto's own interpreter: moto runs Lambda code in docker.
With LIFEBOAT_LAMBDA_FORWARD set to a base URL (that of `cargo lambda watch`, e.g.
http://127.0.0.1:9000), every invocation of a moto Lambda function (the Invoke API, and the
`arn:aws:states:::lambda:invoke` and `lambda:invoke.waitForTaskToken` tasks, which call that API
on this server) is instead POSTed to `<base>/2015-03-31/functions/<function name>/invocations`:
moto's function names are the binaries' names (e.g. `failover-steps`), so create each function in
moto (any dummy zip) under its binary's name. The first invocation waits while cargo lambda builds
the binary (timeout 600 s). A function error (cargo lambda: status 500 and the runtime's
{"errorType", "errorMessage"}; or a 200 carrying X-Amz-Function-Error) is answered as Lambda does,
with X-Amz-Function-Error and that body, so a task fails with the error name `errorType` and
`Retry`/`Catch` match it by `ErrorEquals: ["<errorType>"]`; the Cause is the body. When the
endpoint can't be reached, or answers an error without an errorType (a binary cargo lambda
doesn't know answers 404), the errorType is `Lifeboat.ForwardFailed`.
To run state machines, a test first POSTs /moto-api/config
{"stepfunctions": {"execute_state_machine": true}}, then creates them (a state machine made
before that is not executed). The interpreter reaches Lambda as an HTTP client of
localhost:$MOTO_PORT (moto.settings.moto_server_port(), default 5000), so this script sets
MOTO_PORT to the port it picked. POST /_lifeboat/lambda/functions {"region", "names": [...]}
creates those functions (and their role) through moto's own API and answers their ARNs; POST
/_lifeboat/rds/subnet-group {"region", "name", "account"?} a DB subnet group over a new VPC (restores need one).
POST /_lifeboat/lambda/stub {"region", "name", "result" | "error"} makes a function that stands in
for a user's own Lambda (a drill's validation Lambda): it answers `result`, or fails with `error`.
tests/tests/failover.rs runs the whole path. Found while building it: moto's interpreter keeps a
waitForTaskToken task RUNNING after StopExecution until its timeout (so every callback task here
has one), and its SendTaskFailure drops `cause` (so the approval handler's decision goes on the
timeline, and only the error name travels).

A region down: POST /_lifeboat/outage (see `Outage`) resets the connection of every call signed for
the regions it names, or of Route 53's control plane; GET counts calls per region and caller.
Route 53 ARC's routing controls and the DNS answers they steer (moto has neither): see `Arc`.

IAM's policy simulator (SimulatePrincipalPolicy) and RDS's orderable instance options, which moto
lacks or answers for two engines only, are answered here (see `simulate_principal_policy` and
`orderable_options`; POST /_lifeboat/rds/orderable withdraws a class from a region). So is RDS's
DescribeAccountAttributes, which moto lacks: the manual snapshot quotas per kind, Max being
MOTO_RDS_SNAPSHOT_LIMIT as moto enforces it (see `account_attributes`).

A Lambda Function URL with AuthType AWS_IAM (moto has none): /_lifeboat/function-url/<function>/
verifies the request's SigV4 signature with moto's own credentials, evaluates the role session's
policies for lambda:InvokeFunctionUrl, and forwards the Function URL event, with the verified
principal in requestContext.authorizer.iam, to cargo lambda watch (see `function_url_iam`).

Route 53: moto says INSYNC at once. Here the first GetChange after each ChangeResourceRecordSets
answers PENDING, as Route 53 does until its name servers have the change, so waiting is exercised.

Sizes moto doesn't check: an SSM parameter's value past its tier's limit (4 KB Standard, the
default; 8 KB Advanced; Intelligent-Tiering picks, see `ssm_value_refused`), and an SNS message
past 256 KiB with its attributes (`sns_message_fits`).

At fleet size: POST /_lifeboat/throttle turns on RDS's request throttling, a token bucket per
account, region, service and API family, answered as RDS answers (see `Throttle`); GET counts
every call and every throttled one since. POST /_lifeboat/rds/fleet builds instances, clusters,
replicas and snapshots by moto's own backend methods in seconds where the API takes minutes (see
`rds_fleet`).

Real databases (issue 28): POST /_lifeboat/db/attach {"region", "instance" | "cluster"} puts a real
PostgreSQL or MariaDB server (TLS required, the emulator's own CA) behind an RDS resource, whose
endpoint then is 127.0.0.1:<port>; its snapshots are dumps, its restores, point-in-time restores
and read replicas servers loaded with the data of their recovery point; POST /_lifeboat/db/checkpoint
and /_lifeboat/db/replicate, GET /_lifeboat/db/servers and /_lifeboat/db/ca (see `rds.database_control`
and `databases`).

Where each part lives (scripts/emulator/): `app` wires them (the control endpoints above, then
outages, faults and throttling, then each service's rules in front of moto's app); `common` (the
caller's account, refusals, answers); one module per service: `rds`, `iam`, `kms`, `s3`, `sns`,
`ssm`, `sfn` (Step Functions), `route53`, `arc` (Route 53 ARC), `organizations`, `dynamodb`,
`events` (EventBridge), `awslambda` (forwarding, stubs, Function URLs); `faults`, `outage`,
`throttle`; and `databases` (the real servers behind RDS).
"""

import sys

# No __pycache__ beside the sources: the package is run in place, from a checkout.
sys.dont_write_bytecode = True

from emulator.app import main  # noqa: E402 - after the flag, or the import writes bytecode

if __name__ == "__main__":
    main()
