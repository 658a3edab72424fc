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
"""

import base64
import contextvars
import io
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from urllib.parse import parse_qs, quote

import freezegun
from werkzeug.serving import make_server

from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends
from moto.server import DomainDispatcherApplication, create_backend_app

ARN = re.compile(r"^arn:aws[a-z-]*:rds:([a-z0-9-]+):(\d{12}):(snapshot|cluster-snapshot):(.+)$")
CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


class Refused(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# The account the call being served acts in: set once per call by `served`, read by the rules.
CALLER = contextvars.ContextVar("caller", default=DEFAULT_ACCOUNT_ID)


def caller() -> str:
    return CALLER.get()


def caller_account(environ) -> str:
    """The account moto will act in for this call, decided as moto decides it
    (BaseResponse.get_current_account): MOTO_ACCOUNT_ID, else the x-moto-account-id header, else
    the account of the signing access key (an sts:AssumeRole key acts in the role's account),
    else the default account. Plain test credentials ("testing") are no key moto knows."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.core.responses import BaseResponse
    from moto.iam.models import get_account_id_from

    key = BaseResponse.access_key_regex.search(environ.get("HTTP_AUTHORIZATION", ""))
    return get_account_id_from(key.group("access_key")) if key else DEFAULT_ACCOUNT_ID


def snapshots(region: str, kind: str, account: str | None = None):
    backend = rds_backends[account or caller()][region]
    return backend.cluster_snapshots if kind == "cluster" else backend.database_snapshots


def locate(identifier: str, region: str, kind: str):
    """The snapshot an identifier (in the caller's account) or ARN (in its own) names, or None."""
    m = ARN.match(identifier)
    if m:
        region, account, _, identifier = m.groups()
        return snapshots(region, kind, account).get(identifier)
    return snapshots(region, kind).get(identifier)


def describe_automated_needs_snapshot_type(action, form, region):
    """DescribeDBSnapshots, DBSnapshotIdentifier: "If this identifier is for an automated snapshot,
    the SnapshotType parameter must also be specified." Same for DescribeDBClusterSnapshots'
    DBClusterSnapshotIdentifier. Without it, RDS answers that the snapshot does not exist."""
    for act, field, kind, code in [
        ("DescribeDBSnapshots", "DBSnapshotIdentifier", "db", "DBSnapshotNotFound"),
        ("DescribeDBClusterSnapshots", "DBClusterSnapshotIdentifier", "cluster", "DBClusterSnapshotNotFoundFault"),
    ]:
        if action == act and form.get(field) and not form.get("SnapshotType"):
            snap = locate(form[field], region, kind)
            if snap is not None and snap.snapshot_type == "automated":
                raise Refused(code, f"{form[field]} not found (automated snapshots need SnapshotType)", 404)


# Cross-account sharing and copying. A snapshot is shared by its owner's ModifyDB*SnapshotAttribute
# (AttributeName `restore`), and another account copies it by naming its ARN. The sharing rules
# judge the caller's own snapshot, named by its identifier, as moto's own look-up does.
SHARING = {
    "ModifyDBSnapshotAttribute": ("db", "DBSnapshotIdentifier", "InvalidDBSnapshotState"),
    "ModifyDBClusterSnapshotAttribute": ("cluster", "DBClusterSnapshotIdentifier", "InvalidDBClusterSnapshotStateFault"),
}
COPIES = {
    "CopyDBSnapshot": ("db", "SourceDBSnapshotIdentifier", "DBSnapshotNotFound"),
    "CopyDBClusterSnapshot": ("cluster", "SourceDBClusterSnapshotIdentifier", "DBClusterSnapshotNotFoundFault"),
}


def attribute_values(form, field):
    """The values of a list parameter such as ValuesToAdd (`ValuesToAdd.AttributeValue.1`, ...)."""
    pattern = re.compile(rf"^{field}\.(?:AttributeValue|member)\.\d+$")
    return [v for k, v in form.items() if pattern.match(k)]


def kms_key(key_id: str, region: str, account: str):
    """moto's KMS key a snapshot's KmsKeyId names (a key ARN or alias ARN names its own region and
    account), or None."""
    from moto.kms.models import kms_backends

    m = re.match(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):", key_id or "")
    if m:
        region, account = m.groups()
    try:
        return kms_backends[account][region].describe_key(key_id)
    except Exception:  # moto raises KeyError, or worse, for a key or alias it doesn't have
        return None


def default_key(key_id: str, region: str, account: str) -> bool:
    """Whether a KmsKeyId is the account's default key for RDS (the AWS managed key aws/rds).
    moto's stand-in for it is "default_kms_key_id", what it gives every encrypted instance or
    cluster created without KmsKeyId; and moto makes `alias/aws/rds` a CUSTOMER key on first use,
    so the alias, not KeyManager, tells it apart there."""
    if not key_id:
        return False
    if key_id == "default_kms_key_id" or key_id.endswith("alias/aws/rds"):
        return True
    key = kms_key(key_id, region, account)
    return key is not None and (key.key_manager == "AWS" or "alias/aws/rds" in key.aliases)


def snapshot_region(snap) -> str:
    return snap.backend.region_name


def only_manual_snapshots_are_shared(action, form, region):
    """ModifyDBSnapshotAttribute: "Adds an attribute and values to, or removes an attribute and
    values from, a manual DB snapshot." (ModifyDBClusterSnapshotAttribute: "a manual DB cluster
    snapshot"); the user guides: "To share an automated DB snapshot, create a manual DB snapshot
    by copying the automated snapshot, and then share that copy." InvalidDBSnapshotState /
    InvalidDBClusterSnapshotStateFault are the operations' errors for a snapshot they can't act on.
    moto refuses an instance's automated snapshot only by its `rds:` name, as InvalidParameterValue."""
    if action not in SHARING:
        return
    kind, field, code = SHARING[action]
    snap = snapshots(region, kind).get(form.get(field, ""))
    if snap is not None and snap.snapshot_type != "manual":
        raise Refused(code, "automated snapshots cannot be shared; copy the snapshot and share the copy.")


def encrypted_snapshots_are_not_public(action, form, region):
    """ModifyDBSnapshotAttribute: "If the manual DB snapshot is encrypted, it can be shared, but
    only by specifying a list of authorized AWS account IDs for the ValuesToAdd parameter. You
    can't use all as a value for that parameter in this case." (ModifyDBClusterSnapshotAttribute
    the same.) The reference names no error code: InvalidParameterValue is our stand-in, as it is
    the value `all` that is refused, and no retry would help. moto makes it public."""
    if action not in SHARING or "all" not in attribute_values(form, "ValuesToAdd"):
        return
    kind, field, _ = SHARING[action]
    snap = snapshots(region, kind).get(form.get(field, ""))
    if snap is not None and snap.storage_encrypted:
        raise Refused("InvalidParameterValue", "Encrypted snapshots can't be shared as public: name the accounts to share with.")


def default_key_snapshots_are_not_shared(action, form, region):
    """Sharing encrypted snapshots (RDS and Aurora user guides): "You can't share a snapshot that
    has been encrypted using the default KMS key of the AWS account that shared the snapshot."
    Removing accounts stays possible. The guides name no error code: InvalidParameterValue is our
    stand-in (a property of the snapshot no retry changes, so not the state error). moto shares it."""
    if action not in SHARING or not attribute_values(form, "ValuesToAdd"):
        return
    kind, field, _ = SHARING[action]
    snap = snapshots(region, kind).get(form.get(field, ""))
    # An unencrypted cluster's snapshot carries moto's "default_kms_key_id" too: encryption first.
    if snap is not None and snap.storage_encrypted and default_key(snap.kms_key_id, snapshot_region(snap), caller()):
        raise Refused(
            "InvalidParameterValue",
            "A snapshot encrypted with the default KMS key of the account can't be shared: copy it with a customer managed key and share the copy.",
        )


def shared_source(action, form):
    """(kind, snapshot or None, field, not-found code, owner account) when a copy names a snapshot
    of another account by its ARN; None for a copy within the caller's account."""
    if action not in COPIES:
        return None
    kind, field, code = COPIES[action]
    m = ARN.match(form.get(field, ""))
    if not m or m.group(2) == caller():
        return None
    return kind, locate(form[field], m.group(1), kind), field, code, m.group(2)


def shared_snapshots_are_copied_by_whom_they_are_shared_with(action, form, region):
    """CopyDBSnapshot / CopyDBClusterSnapshot of another account's snapshot: "You can enable other
    AWS accounts to copy DB cluster snapshots that you specify by using the Amazon RDS API
    ModifyDBClusterSnapshotAttribute and CopyDBClusterSnapshot actions" (Copying a DB cluster
    snapshot across accounts); ModifyDBSnapshotAttribute's `restore` lists "the AWS accounts that
    are authorized to restore the manual DB snapshot", or `all` for every account. Any other
    account can't see the snapshot, and RDS answers as for a snapshot that doesn't exist
    (DBSnapshotNotFound / DBClusterSnapshotNotFoundFault, 404). moto looks for the ARN's snapshot
    in the caller's own account instead, and never finds it."""
    found = shared_source(action, form)
    if found is None:
        return
    kind, snap, field, code, _ = found
    allowed = snap.attributes.get("restore", []) if snap is not None else []
    if caller() not in allowed and "all" not in allowed:
        noun = "DBClusterSnapshot" if kind == "cluster" else "DBSnapshot"
        raise Refused(code, f"{noun} {form[field]} not found.", 404)


def shared_cluster_snapshots_are_copied_in_their_region(action, form, region):
    """Copying a DB cluster snapshot across accounts (Aurora user guide): "You can only copy DB
    cluster snapshots across accounts in the same AWS Region." The guide names no error code:
    InvalidParameterCombination is our stand-in (another account's source with another region).
    For DB snapshots no reference states such a rule, so none is encoded."""
    found = shared_source(action, form)
    if found is None or found[0] != "cluster":
        return
    source_region = ARN.match(form[found[2]]).group(1)
    if source_region != region:
        raise Refused(
            "InvalidParameterCombination",
            f"A DB cluster snapshot shared from another account can only be copied in its own region ({source_region}), not in {region}.",
        )


def shared_encrypted_copies_name_a_key(action, form, region):
    """CopyDBSnapshot, KmsKeyId: "If you copy an encrypted DB snapshot that is shared from another
    AWS account, then you must specify a value for this parameter." CopyDBClusterSnapshot: "If you
    copy an encrypted DB cluster snapshot that is shared from another AWS account, then you must
    specify a value for KmsKeyId." The reference names no error code: MissingParameter (RDS's
    common error "A required parameter for the specified action is not supplied") is our stand-in.
    moto would encrypt the copy with the owner's key."""
    found = shared_source(action, form)
    if found is None or found[1] is None or not found[1].storage_encrypted:
        return
    if not form.get("KmsKeyId"):
        raise Refused("MissingParameter", "KmsKeyId is required to copy an encrypted snapshot shared from another account.")


def key_policy_lets(account: str, policy: str) -> bool:
    """Whether a KMS key policy lets `account` create grants: an Allow statement whose Principal
    names the account (its id, its root, a role or user of it) or `*`, and whose Action covers
    kms:CreateGrant; a Deny statement that does the same wins."""
    try:
        statements = as_list(json.loads(policy).get("Statement", []))
    except (ValueError, AttributeError):
        return False

    def names_account(principal) -> bool:
        if principal == "*":
            return True
        ids = as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
        return any(p == "*" or p == account or re.match(rf"^arn:aws[a-z-]*:(?:iam|sts)::{account}:", str(p)) for p in ids)

    def covers(st) -> bool:
        return names_account(st.get("Principal")) and any(
            iam_wildcard(a, "kms:CreateGrant", case=False) for a in as_list(st.get("Action", []))
        )

    if any(st.get("Effect") == "Deny" and covers(st) for st in statements):
        return False
    return any(st.get("Effect") == "Allow" and covers(st) for st in statements)


def shared_key_lets_the_copier_create_grants(action, form, region):
    """Copying a DB cluster snapshot across accounts: "(If the snapshot is encrypted) Using
    Account A, update the key policy for the KMS key, first adding the ARN of Account B as a
    Principal, and then allow the kms:CreateGrant action." A snapshot encrypted with the owner's
    default key can't be shared at all ("You can't share a snapshot that has been encrypted using
    the default KMS key of the AWS account that shared the snapshot": no other account can use that
    key). Otherwise RDS answers KMSKeyNotAccessibleFault ("An error occurred accessing an AWS KMS
    key", CopyDBSnapshot / CopyDBClusterSnapshot). moto never reads a key policy."""
    found = shared_source(action, form)
    if found is None or found[1] is None or not found[1].storage_encrypted:
        return
    snap, owner = found[1], found[4]
    source_region = snapshot_region(snap)
    if default_key(snap.kms_key_id, source_region, owner):
        raise Refused("KMSKeyNotAccessibleFault", f"The snapshot is encrypted with the default KMS key of account {owner}.")
    key = kms_key(snap.kms_key_id, source_region, owner)
    if key is None or not key_policy_lets(caller(), key.policy):
        raise Refused("KMSKeyNotAccessibleFault", f"The key policy of KMS key {snap.kms_key_id} doesn't let account {caller()} use it.")


def only_the_owner_deletes_a_snapshot(action, form, region):
    """DeleteDBSnapshot / DeleteDBClusterSnapshot act in the caller's account: "You can delete only
    the public snapshots that you own. To delete a shared or public snapshot, make sure to log into
    the AWS account that owns the snapshot." (Aurora user guide, Sharing public snapshots.) Named by
    the ARN of another account's snapshot, no snapshot of the caller's is meant: RDS's answer isn't
    documented, and DBSnapshotNotFound / DBClusterSnapshotNotFoundFault (404) is our stand-in, what
    moto answers too. Here before the state rules, which would otherwise judge the other account's
    snapshot."""
    for act, field, code in [
        ("DeleteDBSnapshot", "DBSnapshotIdentifier", "DBSnapshotNotFound"),
        ("DeleteDBClusterSnapshot", "DBClusterSnapshotIdentifier", "DBClusterSnapshotNotFoundFault"),
    ]:
        m = ARN.match(form.get(field, "")) if action == act else None
        if m and m.group(2) != caller():
            raise Refused(code, f"{form[field]} not found in account {caller()}.", 404)


def shared_with(account: str, region: str, kind: str) -> list:
    """The manual snapshots of other accounts in `region` whose `restore` attribute names `account`."""
    found = []
    for owner, regions in list(rds_backends.items()):
        backend = dict.get(regions, region)  # no backend is created for an account never used there
        if owner == account or backend is None:
            continue
        pool = backend.cluster_snapshots if kind == "cluster" else backend.database_snapshots
        found.extend(s for s in list(pool.values()) if s.snapshot_type == "manual" and account in s.attributes.get("restore", []))
    return found


def events_say_whose_they_are() -> None:
    """EventBridge event structure: every event carries `account`, "The 12-digit number
    identifying an AWS account" (the account that put it), and a target receives the event whole.
    moto's default input template for targets drops `account` (its own paths map names it), so a
    receiver could not tell who spoke; Lifeboat's vault trusts only the account EventBridge sets."""
    from moto.events.utils import EventTemplateParser

    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = (
        '{"id": "<id>", "time": <time>, "version": "0", "detail-type": "<detail-type>", "source": "<source>", '
        '"account": "<account>", "region": "<region>", "resources": <resources>, "detail": <detail>}'
    )


def rds_across_accounts() -> None:
    """What moto's RDS lacks for cross-account copies, patched into it; the rules above decide
    who may copy what.
    moto's get_snapshot (its copies' way to the source) looks for an ARN's snapshot in the
    caller's account: here it looks in the ARN's own account and region, so a copy of a shared
    snapshot is made, in the caller's account and region, by moto's own copy (identifier, KmsKeyId,
    Tags over CopyTags, original create time, quota and already-exists as for any copy).
    DescribeDBSnapshots, SnapshotType: "shared - Return all manual DB snapshots that have been
    shared to my AWS account." and "If you don't specify a SnapshotType value, then both automated
    and manual snapshots are returned. Shared and public DB snapshots are not included in the
    returned results by default. You can include shared snapshots with these results by enabling
    the IncludeShared parameter." (DescribeDBClusterSnapshots the same.) moto ignores IncludeShared;
    here it adds the shared snapshots to a listing that names no snapshot or source."""
    from moto.core.responses import ActionResult
    from moto.rds.models import RDSBackend
    from moto.rds.responses import RDSResponse

    original_get_snapshot = RDSBackend.get_snapshot

    def get_snapshot(self, identifier, resource_type, not_found_exception):
        m = ARN.match(identifier)
        if not m or m.group(2) == self.account_id:
            return original_get_snapshot(self, identifier, resource_type, not_found_exception)
        source_region, owner, _, name = m.groups()
        pool = rds_backends[owner][source_region].resource_map[resource_type]
        if name not in pool:
            raise not_found_exception(name)
        return pool[name]

    RDSBackend.get_snapshot = get_snapshot

    def listing(original, kind, result, named_by):
        def describe(self):
            params = self.params
            if params.get("SnapshotType") == "shared":
                return ActionResult({result: shared_with(self.current_account, self.region, kind)})
            include = str(params.get("IncludeShared", "")).lower() == "true"
            if not include or params.get("SnapshotType") or any(params.get(f) for f in named_by):
                return original(self)
            filters = {f["Name"]: f["Values"] for f in params.get("Filters", [])}
            describe_own = self.backend.describe_db_cluster_snapshots if kind == "cluster" else self.backend.describe_db_snapshots
            own = list(describe_own(None, None, None, filters))
            return ActionResult({result: own + shared_with(self.current_account, self.region, kind)})

        return describe

    RDSResponse.describe_db_snapshots = listing(
        RDSResponse.describe_db_snapshots, "db", "DBSnapshots", ("DBSnapshotIdentifier", "DBInstanceIdentifier")
    )
    RDSResponse.describe_db_cluster_snapshots = listing(
        RDSResponse.describe_db_cluster_snapshots, "cluster", "DBClusterSnapshots", ("DBClusterSnapshotIdentifier", "DBClusterIdentifier")
    )


def unencrypted_cluster_copy_refuses_kms_key(action, form, region):
    """CopyDBClusterSnapshot, KmsKeyId: "If you copy an unencrypted DB cluster snapshot and specify
    a value for the KmsKeyId parameter, an error is returned." (CopyDBSnapshot differs: the copy of
    an unencrypted DB snapshot is encrypted with the key.) The reference names no error code;
    InvalidParameterCombination is our stand-in, and Lifeboat never makes the call."""
    if action == "CopyDBClusterSnapshot" and form.get("KmsKeyId"):
        snap = locate(form.get("SourceDBClusterSnapshotIdentifier", ""), region, "cluster")
        if snap is not None and not snap.storage_encrypted:
            raise Refused(
                "InvalidParameterCombination",
                "KmsKeyId can't be specified when copying an unencrypted DB cluster snapshot",
            )


def copy_needs_an_available_source(action, form, region):
    """CopyDBSnapshot / CopyDBClusterSnapshot: "The source DB snapshot must be in the available
    state" (errors InvalidDBSnapshotState / InvalidDBClusterSnapshotStateFault)."""
    for act, field, kind, code in [
        ("CopyDBSnapshot", "SourceDBSnapshotIdentifier", "db", "InvalidDBSnapshotState"),
        ("CopyDBClusterSnapshot", "SourceDBClusterSnapshotIdentifier", "cluster", "InvalidDBClusterSnapshotStateFault"),
    ]:
        if action == act:
            snap = locate(form.get(field, ""), region, kind)
            if snap is not None and snap.status != "available":
                raise Refused(code, f"source snapshot is {snap.status}, not available")


def only_available_manual_snapshots_can_be_deleted(action, form, region):
    """DeleteDBSnapshot: "The DB snapshot must be in the available state to be deleted"
    (InvalidDBSnapshotState); DeleteDBClusterSnapshot the same (InvalidDBClusterSnapshotStateFault).
    Automated snapshots can't be deleted at all: RDS answers "automated snapshots cannot be deleted"
    (instances) and "Only manual snapshots may be deleted" (clusters), as reported in
    terraform-provider-aws#13800 and aws-nuke#511. moto deletes anything.
    Not encoded: `failed`. The reference's "available" would exclude it, yet deleting a failed copy
    is how RDS users clear one; no reference or report settles it, so it passes here and the
    copier reports a refusal from real RDS as a failure."""
    for act, field, kind, code, automated in [
        ("DeleteDBSnapshot", "DBSnapshotIdentifier", "db", "InvalidDBSnapshotState", "automated snapshots cannot be deleted"),
        (
            "DeleteDBClusterSnapshot",
            "DBClusterSnapshotIdentifier",
            "cluster",
            "InvalidDBClusterSnapshotStateFault",
            "Only manual snapshots may be deleted.",
        ),
    ]:
        if action == act:
            snap = locate(form.get(field, ""), region, kind)
            if snap is None:
                return
            if snap.snapshot_type == "automated":
                raise Refused(code, automated)
            if snap.status not in ("available", "failed"):
                raise Refused(code, f"The state of the DB snapshot doesn't allow deletion ({snap.status}).")


TAG_FIELD = re.compile(r"^Tags\.(?:Tag|member)\.\d+\.(Key|Value)$")


def tag_ok(text: str, limit: int) -> bool:
    allowed = all(c.isalnum() or c.isspace() or c in "_.:/=+-@" for c in text)
    return allowed and len(text) <= limit and not text.startswith(("aws:", "rds:"))


def rds_tags_follow_the_tag_rules(action, form, region):
    """RDS Tag: a key is "1 to 128 Unicode characters", a value "1 to 256", neither "prefixed with
    aws: or rds:", and both "can only contain only the set of Unicode letters, digits, white-space,
    '_', '.', ':', '/', '=', '+', '-', '@'". moto stores anything."""
    if action not in ("CopyDBSnapshot", "CopyDBClusterSnapshot", "CreateDBSnapshot", "CreateDBClusterSnapshot", "AddTagsToResource"):
        return
    for field, text in form.items():
        m = TAG_FIELD.match(field)
        if m and not tag_ok(text, 128 if m.group(1) == "Key" else 256):
            raise Refused("InvalidParameterValue", f"tag {m.group(1).lower()} is not valid: {text[:40]}...")


def sns_subject_is_one_short_line(action, form, region):
    """SNS Publish, Subject: "Subjects must be UTF-8 text with no line breaks or control
    characters, and less than 100 characters long." (InvalidParameter). moto takes anything."""
    subject = form.get("Subject")
    if action == "Publish" and subject is not None:
        if len(subject) >= 100 or any(ord(c) < 32 or ord(c) == 127 for c in subject):
            raise Refused("InvalidParameter", "Invalid parameter: Subject")


def binary_size(text: str) -> int:
    """The size of a base64 Binary value as SNS counts it (decoded); its text's when it isn't base64."""
    try:
        return len(base64.b64decode(text, validate=True))
    except ValueError:  # binascii.Error
        return len(text)


SNS_ATTRIBUTE_PART = re.compile(r"^MessageAttributes\.entry\.\d+\.(Name|Value\.DataType|Value\.StringValue|Value\.BinaryValue)$")


def sns_message_fits(action, form, region):
    """SNS Publish, Message: "messages must be UTF-8 encoded strings. By default, a message can be
    at most 256 KiB in size (262,144 bytes, not 262,144 characters)."; MessageAttributeValue: "All
    parts of the message attribute, including name, type, and value, are included in the message
    size restriction, which is 256 KiB (262,144 bytes) by default and is determined by the topic's
    MaximumMessageSize attribute." AWS answers InvalidParameter "Invalid parameter: Message too
    long". moto counts the message's characters and no attributes."""
    if action != "Publish" or "Message" not in form:
        return
    from moto.sns.models import sns_backends

    size = len(form["Message"].encode("utf-8"))
    for field, text in form.items():
        m = SNS_ATTRIBUTE_PART.match(field)
        if m:
            size += binary_size(text) if m.group(1).endswith("BinaryValue") else len(text.encode("utf-8"))
    topic = sns_backends[caller()][region].topics.get(form.get("TopicArn") or form.get("TargetArn") or "")
    limit = int(getattr(topic, "MaximumMessageSize", None) or 262144)
    if size > limit:
        raise Refused("InvalidParameter", "Invalid parameter: Message too long")


def rds_backend(region: str, account: str | None = None):
    return rds_backends[account or caller()][region]


def promote_needs_a_read_replica(action, form, region):
    """PromoteReadReplica, DBInstanceIdentifier: "Must match the identifier of an existing read
    replica DB instance." (and PromoteReadReplicaDBCluster: "an existing DB cluster read replica").
    RDS answers InvalidDBInstanceState "DB Instance is not a read replica."; moto promotes anything
    again, and answers an unknown identifier with a 500."""
    if action == "PromoteReadReplica":
        db = rds_backend(region).databases.get(form.get("DBInstanceIdentifier", ""))
        if db is None:
            raise Refused("DBInstanceNotFound", f"DBInstance {form.get('DBInstanceIdentifier')} not found.", 404)
        if not db.is_replica:
            raise Refused("InvalidDBInstanceState", "DB Instance is not a read replica.")
    if action == "PromoteReadReplicaDBCluster":
        cluster = rds_backend(region).clusters.get(form.get("DBClusterIdentifier", ""))
        if cluster is None:
            raise Refused("DBClusterNotFoundFault", f"DBCluster {form.get('DBClusterIdentifier')} not found.", 404)
        if not getattr(cluster, "replication_source_identifier", None):
            raise Refused("InvalidDBClusterStateFault", "DB Cluster that is not a read replica cannot be promoted.")


def promotion_makes_a_standalone_instance(action, form, region):
    """PromoteReadReplica: "Promotes a read replica DB instance to a standalone DB instance." Once
    promoted, RDS reports no ReadReplicaSourceDBInstanceIdentifier and the source no longer lists
    it in ReadReplicaDBInstanceIdentifiers; moto keeps both, so a promoted replica still looked
    like a replica of its source. Runs last of the rules: nothing refuses the call after it."""
    if action != "PromoteReadReplica":
        return
    db = rds_backend(region).databases.get(form.get("DBInstanceIdentifier", ""))
    if db is None or not db.is_replica:
        return
    source = db.source_db_instance_identifier or ""
    db.source_db_instance_identifier = None
    parts = source.split(":")
    home, source_id = (parts[3], parts[-1]) if source.startswith("arn:") and len(parts) >= 7 else (region, source)
    primary = rds_backend(home).databases.get(source_id)
    if primary is not None:
        primary.replicas = [r for r in primary.replicas if r not in (db.db_instance_identifier, db.db_instance_arn)]


def removing_from_a_global_cluster_detaches(action, form, region):
    """RemoveFromGlobalCluster: "Detaches an Aurora secondary cluster from an Aurora global
    database cluster. The cluster becomes a standalone cluster"; GlobalClusterNotFoundFault (404)
    when there is no such global cluster, DBClusterNotFoundFault when the cluster is not its
    member. moto looks for the global cluster in the caller's region only and swallows every
    error: the call answers success and detaches nothing. Done here, in the global cluster's own
    region; moto's own attempt then finds nothing to do."""
    if action != "RemoveFromGlobalCluster":
        return
    wanted, member = form.get("GlobalClusterIdentifier", ""), form.get("DbClusterIdentifier", "")
    found = None
    for backend in rds_backends[caller()].values():
        found = backend.global_clusters.get(wanted) or found
    if found is None:
        raise Refused("GlobalClusterNotFoundFault", f"Global cluster {wanted} not found", 404)
    cluster = next((c for c in found.members if member in (c.db_cluster_arn, c.db_cluster_identifier)), None)
    if cluster is None:
        raise Refused("DBClusterNotFoundFault", f"DBCluster {member} is not a member of {wanted}", 404)
    found.members.remove(cluster)
    cluster.global_cluster_identifier = None


def point_in_time_is_before_the_latest_restorable_time(action, form, region):
    """RestoreDBInstanceToPointInTime, RestoreTime: "Must be before the latest restorable time for
    the DB instance." and "Can't be specified if the UseLatestRestorableTime parameter is enabled."
    (RestoreDBClusterToPointInTime's RestoreToTime likewise.) moto restores any time, even future."""
    field = {"RestoreDBInstanceToPointInTime": "RestoreTime", "RestoreDBClusterToPointInTime": "RestoreToTime"}.get(action)
    if not field or field not in form:
        return
    if form.get("UseLatestRestorableTime", "false").lower() == "true":
        raise Refused("InvalidParameterCombination", f"Cannot specify both {field} and UseLatestRestorableTime")
    when = datetime.fromisoformat(form[field].replace("Z", "+00:00"))
    if when > datetime.now(timezone.utc):
        raise Refused("InvalidRestoreFault", f"{field} {form[field]} is after the latest restorable time")


def forced_failover_needs_multi_az(action, form, region):
    """RebootDBInstance, ForceFailover: "Constraint: You can't enable force failover if the instance
    isn't configured for Multi-AZ." moto ignores ForceFailover."""
    if action != "RebootDBInstance" or form.get("ForceFailover", "false").lower() != "true":
        return
    db = rds_backend(region).databases.get(form.get("DBInstanceIdentifier", ""))
    if db is not None and not db.multi_az:
        raise Refused(
            "InvalidParameterCombination",
            "ForceFailover cannot be specified since the instance is not configured for either MultiAZ or High Availability",
        )


# freezegun moves `time.monotonic` with the emulator's clock (tests move it by months); how long a
# restore takes is real time.
REAL_CLOCK = time.monotonic
# A restored cluster is `creating` this long (real seconds) before it is `available`.
CLUSTER_RESTORE_SECONDS = float(os.environ.get("LIFEBOAT_MOTO_CLUSTER_RESTORE_SECONDS", "3"))
RESTORING_CLUSTERS = {}  # (account, region, id) -> when it becomes available (REAL_CLOCK)


def restored_clusters_take_a_while():
    """RestoreDBClusterFromSnapshot and RestoreDBClusterToPointInTime start a restore that takes
    minutes; moto's cluster says `creating` to one read, then `available`. Here it stays
    `creating` for CLUSTER_RESTORE_SECONDS (real time), as RDS's does until the restore is done."""
    now = REAL_CLOCK()
    for (account, region, cluster_id), ready in list(RESTORING_CLUSTERS.items()):
        cluster = rds_backend(region, account).clusters.get(cluster_id)
        if cluster is None or now >= ready:
            if cluster is not None:
                cluster.status = "available"
            RESTORING_CLUSTERS.pop((account, region, cluster_id), None)
        else:
            cluster.status = "creating"


def instances_only_in_an_available_cluster(action, form, region):
    """RestoreDBClusterFromSnapshot: "You can create DB instances only after the
    RestoreDBClusterFromSnapshot operation has completed and the DB cluster is available."
    (RestoreDBClusterToPointInTime: the same.) CreateDBInstance lists InvalidDBClusterStateFault:
    "The requested operation can't be performed while the cluster is in this state." moto adds
    instances to a cluster in any state."""
    if action == "CreateDBInstance" and (form.get("DBClusterIdentifier") or "").lower():
        key = (caller(), region, form["DBClusterIdentifier"].lower())
        if key in RESTORING_CLUSTERS and REAL_CLOCK() < RESTORING_CLUSTERS[key]:
            raise Refused("InvalidDBClusterStateFault", f"DB cluster {key[2]} is creating, not available.")


def default_option_groups_exist(action, form, region):
    """Every region has each engine's default option group (`default:postgres-14`), and a request
    may name it (Lifeboat passes on the source's, whatever it is). moto lists none and refuses
    one named explicitly (OptionGroupNotFoundFault): here, naming one makes it exist first."""
    name = form.get("OptionGroupName") or ""
    if action not in RESTORES and action != "CreateDBInstance" or not name.startswith("default:"):
        return
    backend = rds_backend(region)
    if name not in backend.option_groups:
        from moto.rds.models import OptionGroup

        engine, _, version = name[len("default:"):].partition("-")
        backend.option_groups[name] = OptionGroup(backend, name, engine, version.replace("-", "."), f"Default option group for {engine}")


def restoring_over_an_existing_cluster_says_so(action, form, region):
    """RestoreDBClusterFromSnapshot / RestoreDBClusterToPointInTime into an identifier in use:
    DBClusterAlreadyExistsFault ("User already has a DB cluster with the given identifier"). moto
    first makes the new cluster's automated snapshot and answers DBClusterSnapshotAlreadyExistsFault."""
    if action in ("RestoreDBClusterFromSnapshot", "RestoreDBClusterToPointInTime"):
        cluster_id = (form.get("DBClusterIdentifier") or "").lower()
        if cluster_id in rds_backend(region).clusters:
            raise Refused("DBClusterAlreadyExistsFault", "User already has a DB cluster with the given identifier.")


RESTORES = {
    "RestoreDBInstanceFromDBSnapshot": ("instance", "DBInstanceIdentifier"),
    "RestoreDBInstanceToPointInTime": ("instance", "TargetDBInstanceIdentifier"),
    "RestoreDBClusterFromSnapshot": ("cluster", "DBClusterIdentifier"),
    "RestoreDBClusterToPointInTime": ("cluster", "DBClusterIdentifier"),
}


def restores_take_rds_defaults(action, form, region):
    """After a restore moto carried over: what RDS does with what a restore leaves out.
    RestoreDBInstanceToPointInTime: "The target database is created with most of the original
    configuration, but in a system-selected Availability Zone, with the default security group,
    the default subnet group, and the default DB parameter group. By default, the new DB instance
    is created as a single-AZ deployment"; RestoreDBInstanceFromDBSnapshot: "including the default
    security group and DB parameter group. By default, the new DB instance is created as a
    Single-AZ deployment"; DBClusterParameterGroupName: "If this argument is omitted, the default
    DB cluster parameter group for the specified engine is used." moto copies the source's
    groups and Multi-AZ into the restore instead, so a restore that forgot them passed here.
    An option group left out becomes the engine's default one (moto's default naming)."""
    kind, field = RESTORES[action]
    backend = rds_backend(region)
    given = lambda prefix: any(k == prefix or k.startswith(prefix + ".") for k in form)
    if kind == "instance":
        db = backend.databases.get((form.get(field) or "").lower())
        if db is None:
            return
        if not given("DBParameterGroupName"):
            db.db_parameter_group_name = None
        if not given("DBSubnetGroupName"):
            db.db_subnet_group_name = None
        if not given("VpcSecurityGroupIds"):
            from moto.ec2.models import ec2_backends

            ec2 = ec2_backends[caller()][region]
            db.vpc_security_group_ids = [ec2.get_default_security_group(ec2.default_vpc.id).id]
        if not given("OptionGroupName"):
            major = (db.engine_version or "").split(".")
            db.option_group_name = f"default:{db.engine}-{'-'.join(major[:2])}"
        if not given("MultiAZ"):
            db.multi_az = False
        return
    cluster = backend.clusters.get((form.get(field) or "").lower())
    if cluster is None:
        return
    if not given("DBClusterParameterGroupName"):
        cluster.parameter_group = "default.aurora8.0" if cluster.engine.startswith("aurora") else f"default.{cluster.engine}"
    if not given("DBSubnetGroupName"):
        cluster.db_subnet_group_name = "default"
    if not given("VpcSecurityGroupIds"):
        cluster.vpc_security_group_ids = []
    RESTORING_CLUSTERS[(caller(), region, cluster.db_cluster_identifier)] = REAL_CLOCK() + CLUSTER_RESTORE_SECONDS
    cluster.status = "creating"


STRICT_RULES = [
    default_option_groups_exist,
    restoring_over_an_existing_cluster_says_so,
    instances_only_in_an_available_cluster,
    describe_automated_needs_snapshot_type,
    only_manual_snapshots_are_shared,
    encrypted_snapshots_are_not_public,
    default_key_snapshots_are_not_shared,
    shared_snapshots_are_copied_by_whom_they_are_shared_with,
    shared_cluster_snapshots_are_copied_in_their_region,
    shared_encrypted_copies_name_a_key,
    shared_key_lets_the_copier_create_grants,
    unencrypted_cluster_copy_refuses_kms_key,
    copy_needs_an_available_source,
    only_the_owner_deletes_a_snapshot,
    only_available_manual_snapshots_can_be_deleted,
    rds_tags_follow_the_tag_rules,
    sns_subject_is_one_short_line,
    sns_message_fits,
    promote_needs_a_read_replica,
    point_in_time_is_before_the_latest_restorable_time,
    forced_failover_needs_multi_az,
    promotion_makes_a_standalone_instance,
    removing_from_a_global_cluster_detaches,
]


# IAM's policy simulator, which moto lacks. SimulatePrincipalPolicy (IAM API reference):
# PolicySourceArn and ActionNames are required; ResourceArns defaults to "*"; each action on each
# resource gets an EvalDecision of "allowed", "explicitDeny" or "implicitDeny"; an entity that
# doesn't exist is NoSuchEntity (404). The decision follows IAM's evaluation logic for identity
# policies: an explicit Deny that applies wins, else an Allow that applies, else implicitDeny; a
# statement applies when its Action/NotAction, Resource/NotResource and every Condition match the
# request's context (ContextEntries). A condition on a key the context lacks does not match
# (IfExists and ForAllValues excepted, as IAM documents). Operators beyond the ones below never
# match: a simulation here may say "denied" where AWS would allow, never the reverse.
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def members(form, prefix):
    out, i = [], 1
    while f"{prefix}.member.{i}" in form:
        out.append(form[f"{prefix}.member.{i}"])
        i += 1
    return out


def simulation_context(form):
    context, i = {}, 1
    while f"ContextEntries.member.{i}.ContextKeyName" in form:
        base = f"ContextEntries.member.{i}"
        context[form[f"{base}.ContextKeyName"].lower()] = members(form, f"{base}.ContextKeyValues")
        i += 1
    return context


def iam_wildcard(pattern: str, value: str, case: bool = True) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, value, 0 if case else re.IGNORECASE) is not None


def as_list(v):
    return v if isinstance(v, list) else [v]


CONDITION_TESTS = {
    "StringEquals": (lambda want, have: want == have, False),
    "StringNotEquals": (lambda want, have: want == have, True),
    "StringEqualsIgnoreCase": (lambda want, have: want.lower() == have.lower(), False),
    "StringLike": (iam_wildcard, False),
    "StringNotLike": (iam_wildcard, True),
    "ArnEquals": (iam_wildcard, False),
    "ArnLike": (iam_wildcard, False),
    "ArnNotEquals": (iam_wildcard, True),
    "ArnNotLike": (iam_wildcard, True),
    "Bool": (lambda want, have: want.lower() == have.lower(), False),
}


def condition_holds(operator: str, keys: dict, context: dict) -> bool:
    qualifier, _, op = operator.rpartition(":")
    for key, wanted in keys.items():
        wanted = [str(w) for w in as_list(wanted)]
        have = context.get(key.lower())
        if op == "Null":
            if (have is None) != (wanted[0].lower() == "true"):
                return False
            continue
        if_exists = op.endswith("IfExists")
        test = CONDITION_TESTS.get(op[: -len("IfExists")] if if_exists else op)
        if test is None:
            return False
        if have is None:
            if if_exists or qualifier == "ForAllValues":
                continue
            return False
        match, negated = test
        if qualifier == "ForAllValues":
            ok = all(any(match(w, h) for w in wanted) != negated for h in have)
        elif qualifier == "ForAnyValue":
            ok = any(any(match(w, h) for w in wanted) != negated for h in have)
        else:
            ok = any(match(w, have[0]) for w in wanted) != negated
        if not ok:
            return False
    return True


def statement_applies(st, action, resource, context) -> bool:
    if "Action" in st and not any(iam_wildcard(a, action, case=False) for a in as_list(st["Action"])):
        return False
    if "NotAction" in st and any(iam_wildcard(a, action, case=False) for a in as_list(st["NotAction"])):
        return False
    if "Resource" in st and not any(iam_wildcard(r, resource) for r in as_list(st["Resource"])):
        return False
    if "NotResource" in st and any(iam_wildcard(r, resource) for r in as_list(st["NotResource"])):
        return False
    return all(condition_holds(op, keys, context) for op, keys in (st.get("Condition") or {}).items())


def iam_decision(statements, action, resource, context) -> str:
    allowed = False
    for st in statements:
        if statement_applies(st, action, resource, context):
            if st.get("Effect") == "Deny":
                return "explicitDeny"
            allowed = True
    return "allowed" if allowed else "implicitDeny"


def role_statements(role_arn: str):
    """Every statement of the role's inline and attached managed policies; None if no such role."""
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
    role = next((r for r in backend.roles.values() if r.arn == role_arn), None)
    if role is None:
        return None
    documents = list(role.policies.values())
    for policy in role.managed_policies.values():
        version = next((v for v in policy.versions if v.is_default), None)
        if version is not None:
            documents.append(version.document)
    statements = []
    for doc in documents:
        parsed = json.loads(doc) if isinstance(doc, str) else doc
        statements.extend(as_list(parsed.get("Statement", [])))
    return statements


def names_principal(principal, arn: str) -> bool:
    """A resource policy's Principal covers `arn`: "*", the ARN itself, or its account's root."""
    if principal == "*":
        return True
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    named = as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
    return any(p == "*" or p == arn or p in (account, f"arn:aws:iam::{account}:root") for p in named)


def resource_policy_statements(form, source: str):
    """SimulatePrincipalPolicy's ResourcePolicy (IAM API reference: "A resource-based policy to
    include in the simulation provided as a string. Each resource in the simulation is treated as if
    it had this policy attached."): the statements whose Principal covers the caller. In one account
    an explicit Deny in either policy wins, else an Allow in either allows (IAM's evaluation logic),
    which `iam_decision` over both lists gives."""
    text = form.get("ResourcePolicy")
    if not text:
        return []
    doc = json.loads(text)
    return [st for st in as_list(doc.get("Statement", [])) if names_principal(st.get("Principal", {}), source)]


def kms_decision(identity, key_policy, source: str, action: str, resource: str, context) -> str:
    """A KMS action with a key policy as the ResourcePolicy. KMS developer guide, "Key policies in
    AWS KMS": "Unless the key policy explicitly allows it, you cannot use IAM policies to allow
    access to a KMS key. Without permission from the key policy, IAM policies that allow permissions
    have no effect." A key policy Allow for the principal itself (or "*") allows; one for the
    account (its id or `arn:aws:iam::<account>:root`, the default key policy's) only lets the
    identity policies decide; a Deny in either, for the principal or its account, wins."""
    account = source.split(":")[4] if source.count(":") >= 5 else ""

    def who(st) -> str | None:
        principal = st.get("Principal", {})
        named = ["*"] if principal == "*" else as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
        if any(p in ("*", source) for p in named):
            return "principal"
        if any(p in (account, f"arn:aws:iam::{account}:root") for p in named):
            return "account"
        return None

    applying = [(who(st), st) for st in key_policy if who(st) and statement_applies(st, action, resource, context)]
    identity_says = iam_decision(identity, action, resource, context)
    if identity_says == "explicitDeny" or any(st.get("Effect") == "Deny" for _, st in applying):
        return "explicitDeny"
    allows = {w for w, st in applying if st.get("Effect") == "Allow"}
    if "principal" in allows or ("account" in allows and identity_says == "allowed"):
        return "allowed"
    return "implicitDeny"


def simulate_principal_policy(form, start_response):
    source, actions = form.get("PolicySourceArn"), members(form, "ActionNames")
    if not source or not actions:
        return error_response(start_response, "InvalidInput", "PolicySourceArn and ActionNames are required")
    identity = role_statements(source)
    if identity is None:
        return error_response(start_response, "NoSuchEntity", f"The role with ARN {source} cannot be found.", 404)
    statements = identity + resource_policy_statements(form, source)
    context = simulation_context(form)
    key_policy = as_list(json.loads(form["ResourcePolicy"]).get("Statement", [])) if form.get("ResourcePolicy") else None

    def decide(a: str, r: str) -> str:
        if key_policy is not None and a.lower().startswith("kms:"):
            return kms_decision(identity, key_policy, source, a, r, context)
        return iam_decision(statements, a, r, context)

    results = "".join(
        f"<member><EvalActionName>{a}</EvalActionName><EvalResourceName>{r}</EvalResourceName>"
        f"<EvalDecision>{decide(a, r)}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/></member>"
        for a in actions
        for r in (members(form, "ResourceArns") or ["*"])
    )
    xml = (
        f'<SimulatePrincipalPolicyResponse xmlns="{IAM_NS}"><SimulatePrincipalPolicyResult>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults>"
        "</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>lifeboat-moto</RequestId>"
        "</ResponseMetadata></SimulatePrincipalPolicyResponse>"
    )
    start_response("200 OK", [("Content-Type", "text/xml")])
    return [xml.encode()]


# S3 Object Lock, compliance mode (S3 User Guide, "Locking objects with Object Lock", retention
# modes): "In compliance mode, a protected object version can't be overwritten or deleted by any
# user, including the root user in your AWS account. When an object is locked in compliance mode,
# its retention mode can't be changed, and its retention period can't be shortened." moto refuses
# DeleteObject of a locked version, but PutObjectRetention sets any mode and date: here a
# compliance-mode version still locked refuses another mode or an earlier date (403 AccessDenied).
S3_RETENTION_MODE = re.compile(r"<Mode>\s*([A-Z]+)\s*</Mode>")
S3_RETAIN_UNTIL = re.compile(r"<RetainUntilDate>\s*([^<]+?)\s*</RetainUntilDate>")


def s3_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).astimezone(timezone.utc)


def compliance_retention_refused(environ) -> str | None:
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if environ.get("REQUEST_METHOD") != "PUT" or "retention" not in query:
        return None
    bucket, _, key = (environ.get("PATH_INFO") or "").lstrip("/").partition("/")
    from moto.s3.models import s3_backends

    try:
        found = s3_backends[caller_account(environ)]["aws"].get_object(
            bucket, key, version_id=query.get("versionId", [None])[0]
        )
    except Exception:  # noqa: BLE001 - not ours to judge: moto answers as it does
        return None
    if found is None or getattr(found, "lock_mode", None) != "COMPLIANCE" or not found.lock_until:
        return None
    until = s3_time(found.lock_until)
    if until <= datetime.now(timezone.utc):
        return None
    body = peek_body(environ)
    text = body.decode("utf-8", "replace")
    mode, wanted = S3_RETENTION_MODE.search(text), S3_RETAIN_UNTIL.search(text)
    if mode is None or mode.group(1) != "COMPLIANCE" or wanted is None or s3_time(wanted.group(1)) < until:
        return "Object Lock compliance mode: the retention mode can't be changed, nor the period shortened"
    return None


def s3_error(start_response, code: str, message: str, status: int):
    xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>lifeboat-moto</RequestId></Error>"
    start_response(f"{status} Error", [("Content-Type", "application/xml")])
    return [xml.encode()]


# Organizations reads from a member account. API reference (ListPoliciesForTarget, ListParents,
# DescribePolicy): "This operation can be called only from the organization's management account or
# by a member account that is a delegated administrator." moto answers a member from its own empty
# backend (AccountNotFoundException, whatever the delegation): here a member that is a delegated
# administrator (RegisterDelegatedAdministrator, standing in for the management account's
# resource-based delegation policy, which moto lacks) is answered by its organization, and any
# other member is refused (AccessDeniedException).
ORGANIZATIONS_DELEGATED_READS = {"DescribePolicy", "ListParents", "ListPoliciesForTarget"}


def organizations_member_read_refused(environ) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    service, _, op = target.partition(".")
    if service != "AWSOrganizationsV20161128" or op not in ORGANIZATIONS_DELEGATED_READS:
        return None
    from moto.organizations.models import organizations_backends

    account = caller_account(environ)
    member_of = organizations_backends.master_accounts.get(account)
    if member_of is None or member_of[0] == account:
        return None
    management, partition = member_of
    if any(a.account.id == account for a in organizations_backends[management][partition].admins):
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = management
        return None
    return f"account {account} is neither the management account nor a delegated administrator"


# DescribeOrderableDBInstanceOptions: moto answers only aurora-postgresql and neptune, and ignores
# DBInstanceClass. RDS API reference: Engine is required; EngineVersion and DBInstanceClass filter
# the offerings. moto has no catalogue of what each region offers, so here every class is offered
# for every engine and version unless a test withdraws it (POST /_lifeboat/rds/orderable
# {"region", "engine", "class", "offered": false}), as a region that doesn't offer a class answers:
# an empty list.
WITHDRAWN_CLASSES = set()


def orderable_options(form, region, start_response):
    engine = form.get("Engine")
    if not engine:
        return error_response(start_response, "InvalidParameterValue", "Engine is required")
    klass, version = form.get("DBInstanceClass"), form.get("EngineVersion")
    offered = klass is not None and (region, engine, klass) not in WITHDRAWN_CLASSES
    option = (
        f"<OrderableDBInstanceOption><Engine>{engine}</Engine><EngineVersion>{version or ''}</EngineVersion>"
        f"<DBInstanceClass>{klass}</DBInstanceClass><LicenseModel>general-public-license</LicenseModel>"
        "<Vpc>true</Vpc><MultiAZCapable>true</MultiAZCapable></OrderableDBInstanceOption>"
        if offered
        else ""
    )
    xml = (
        '<DescribeOrderableDBInstanceOptionsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        f"<DescribeOrderableDBInstanceOptionsResult><OrderableDBInstanceOptions>{option}</OrderableDBInstanceOptions>"
        "</DescribeOrderableDBInstanceOptionsResult><ResponseMetadata><RequestId>lifeboat-moto</RequestId>"
        "</ResponseMetadata></DescribeOrderableDBInstanceOptionsResponse>"
    )
    start_response("200 OK", [("Content-Type", "text/xml")])
    return [xml.encode()]


# DescribeAccountAttributes, which moto lacks. RDS API reference (AccountQuota): "ManualSnapshots -
# The number of manual DB instance snapshots per account. The used value is the count of the
# manual DB instance snapshots in the account." and "ManualClusterSnapshots - The number of manual
# DB cluster snapshots per account. The used value is the count of the manual DB cluster snapshots
# in the account." Answered for the region the call is signed for (RDS's endpoints are regional),
# counting the caller's account's manual snapshots there; each Max is the limit moto enforces on
# creates and copies of that kind: MOTO_RDS_SNAPSHOT_LIMIT (moto's default 1000). Only these two
# quotas: the API lists more, which Lifeboat doesn't read.
def account_attributes(region, start_response):
    backend = rds_backend(region)
    limit = backend.SNAPSHOT_QUOTA

    def manual(found):
        return sum(1 for s in found.values() if getattr(s, "snapshot_type", "manual") == "manual")

    quotas = "".join(
        f"<AccountQuota><AccountQuotaName>{name}</AccountQuotaName><Used>{used}</Used><Max>{limit}</Max></AccountQuota>"
        for name, used in [
            ("ManualSnapshots", manual(backend.database_snapshots)),
            ("ManualClusterSnapshots", manual(backend.cluster_snapshots)),
        ]
    )
    xml = (
        '<DescribeAccountAttributesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        f"<DescribeAccountAttributesResult><AccountQuotas>{quotas}</AccountQuotas></DescribeAccountAttributesResult>"
        "<ResponseMetadata><RequestId>lifeboat-moto</RequestId></ResponseMetadata></DescribeAccountAttributesResponse>"
    )
    start_response("200 OK", [("Content-Type", "text/xml")])
    return [xml.encode()]


RRSET_PATH = re.compile(r"^/2013-04-01/hostedzone/([^/]+)/rrset/?$")
CHANGE_PATH = re.compile(r"^/2013-04-01/change/([^/]+)$")


def route53_change_rules(zone_id: str, body: str):
    """ChangeResourceRecordSets: a CNAME at the zone apex is refused ("creating a CNAME record for
    the zone apex isn't supported", InvalidChangeBatch), and ChangeBatch Comment is at most 256
    characters (InvalidInput). moto takes both."""
    from moto.route53.models import route53_backends

    comment = re.search(r"<Comment>(.*?)</Comment>", body, re.S)
    if comment and len(comment.group(1)) > 256:
        raise Refused("InvalidInput", "Comment is longer than 256 characters")
    zone = route53_backends[DEFAULT_ACCOUNT_ID]["aws"].zones.get(zone_id)
    if zone is None:
        return
    apex = zone.name.rstrip(".").lower()
    # A batch is applied as one: what it DELETEs no longer conflicts with what it creates.
    changes = re.findall(r"<Change>\s*<Action>(.*?)</Action>\s*<ResourceRecordSet>(.*?)</ResourceRecordSet>", body, re.S)
    deleted = set()
    for action, rrset in changes:
        name = re.search(r"<Name>(.*?)</Name>", rrset, re.S)
        kind = re.search(r"<Type>(.*?)</Type>", rrset, re.S)
        if action == "DELETE" and name and kind:
            deleted.add((name.group(1).rstrip(".").lower(), kind.group(1)))
    for action, rrset in changes:
        if action == "DELETE":
            continue
        name = re.search(r"<Name>(.*?)</Name>", rrset, re.S)
        kind = re.search(r"<Type>(.*?)</Type>", rrset, re.S)
        if name and kind and kind.group(1) == "CNAME" and name.group(1).rstrip(".").lower() == apex:
            raise Refused(
                "InvalidChangeBatch", f"RRSet of type CNAME with DNS name {name.group(1)} is not permitted at apex in zone {apex}"
            )
        cname_conflicts(zone, rrset, name, kind, deleted)


def cname_conflicts(zone, rrset, name, kind, deleted=frozenset()):
    """A CNAME can't share its name with any other record ("RRSet of type CNAME with DNS name x.
    is not permitted as it conflicts with other records with the same DNS name", aws-sdk-java#1996),
    and a simple record can't join records with a routing policy ("cannot be created as a
    non-weighted set exists with the same name and type", external-dns#1411): Route 53 answers
    InvalidChangeBatch, UPSERT or not. moto replaces or adds anything."""
    if not (name and kind and kind.group(1) == "CNAME"):
        return
    wanted = name.group(1).rstrip(".").lower()
    routed = re.search(r"<SetIdentifier>", rrset) is not None
    for existing in zone.rrsets:
        if existing.name.rstrip(".").lower() != wanted or (wanted, existing.type) in deleted:
            continue
        if existing.type != "CNAME":
            raise Refused(
                "InvalidChangeBatch",
                f"RRSet of type CNAME with DNS name {name.group(1)} is not permitted as it conflicts with other records with the same DNS name",
            )
        if bool(existing.set_identifier) != routed:
            raise Refused(
                "InvalidChangeBatch",
                f"RRSet with DNS name {name.group(1)}, type CNAME cannot be created as a record set with a routing policy exists with the same name and type",
            )


# StartExecution, name: "A name must not contain: white space, brackets < > { } [ ], wildcard
# characters ? *, special characters " # % \\ ^ | ~ ` $ & , ; : /, control characters"; the SDK
# model gives its length as 1 to 80. moto's interpreter checks neither (InvalidName on AWS).
NAME_FORBIDDEN = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]')


def execution_name_refused(environ):
    """Why StartExecution's name would be refused, or None. Leaves the body readable for moto."""
    raw = peek_body(environ)
    try:
        name = json.loads(raw or b"{}").get("name")
    except ValueError:
        return None
    if name is None:
        return None
    if not 1 <= len(name) <= 80:
        return f"Invalid Name: '{name}' (it must be 1 to 80 characters, not {len(name)})"
    if NAME_FORBIDDEN.search(name):
        return f"Invalid Name: '{name}'"
    return None


# SSM PutParameter, Value: "Standard parameters have a value limit of 4 KB. Advanced parameters
# have a value limit of 8 KB." Tier: "if you don't specify a tier in a request, Parameter Store
# assigns the tier based on the current Parameter Store default tier configuration" ("The default
# tier when you begin using Parameter Store is the standard-parameter tier"); "Intelligent-Tiering:
# With this option, Parameter Store evaluates each request to determine if the parameter is
# standard or advanced", advanced when "The content size of the parameter is more than 4 KB" or
# "The parameter uses a parameter policy"; and "you can't revert an advanced parameter to a
# standard parameter". AWS refuses with ValidationException "Standard tier parameters support a
# maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the
# parameter to use the advanced-parameter tier. ..." (terraform-aws-github-runner#3815), and past
# 8 KB "The specified parameter value is too large. Advanced-tier parameters support a maximum
# parameter value of 8192 characters." moto stores any size, and keeps "Intelligent-Tiering" as
# the tier where AWS answers the one it chose. Not encoded: an explicit Standard over an Advanced
# parameter (refused by AWS, with an error no reference names).
# Bytes or characters: the reference says KB, AWS's message says characters, and nothing public
# settles it for text beyond ASCII (reports measure ASCII: 4096 accepted, 4097 refused). Here UTF-8
# bytes, the stricter reading: what fits here fits on AWS either way.
SSM_TIER_LIMITS = {"Standard": 4096, "Advanced": 8192}
SSM_TOO_LARGE = {
    "Standard": "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger "
    "parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see "
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
    "Advanced": "The specified parameter value is too large. Advanced-tier parameters support a maximum parameter value of 8192 characters.",
}


def ssm_value_refused(environ) -> str | None:
    """Why PutParameter's value is too large for its tier, or None; an Intelligent-Tiering request
    is handed to moto with the tier AWS would pick. Leaves the body readable for moto."""
    from moto.ssm.models import ssm_backends

    raw = peek_body(environ)
    try:
        request = json.loads(raw or b"{}")
    except ValueError:
        return None
    if not isinstance(request, dict) or not isinstance(request.get("Value"), str) or not request.get("Name"):
        return None
    region = (CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", "")) or [None, "us-east-1"])[1]
    backend = ssm_backends[caller_account(environ)][region]
    # Not backend._parameters[name]: that would create the entry (a defaultdict) or load AWS's public ones.
    versions = dict.get(backend._parameters, backend._parameters.normalize_name(request["Name"])) or []
    if versions and not request.get("Overwrite"):
        return None  # moto answers ParameterAlreadyExists
    previous = versions[-1].tier if versions else None
    size = len(request["Value"].encode("utf-8"))
    tier = request.get("Tier") or previous or getattr(backend, "default_parameter_tier", "Standard")
    if tier == "Intelligent-Tiering":
        needs_advanced = size > SSM_TIER_LIMITS["Standard"] or previous == "Advanced" or request.get("Policies") not in (None, "", "[]")
        tier = "Advanced" if needs_advanced else "Standard"
        request["Tier"] = tier
        raw = json.dumps(request).encode()
        environ["CONTENT_LENGTH"] = str(len(raw))
        environ["wsgi.input"] = io.BytesIO(raw)
    if tier in SSM_TIER_LIMITS and size > SSM_TIER_LIMITS[tier]:
        return SSM_TOO_LARGE[tier]
    return None


KEY_ID_OR_ARN = {f"TrentService.{op}" for op in ("ScheduleKeyDeletion", "CancelKeyDeletion", "EnableKey", "DisableKey")}


def key_arn_as_key_id(environ):
    """ScheduleKeyDeletion, CancelKeyDeletion, EnableKey, DisableKey: "KeyId: Specify the key ID
    or key ARN of the KMS key" (AWS KMS API Reference). moto looks the ARN up as an id and fails (KeyError, a 500):
    give it the id the ARN names."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    key = body.get("KeyId", "") if isinstance(body, dict) else ""
    if key.startswith("arn:") and ":key/" in key:
        body["KeyId"] = key.split(":key/", 1)[1]
        raw = json.dumps(body).encode()
        environ["CONTENT_LENGTH"] = str(len(raw))
    environ["wsgi.input"] = io.BytesIO(raw)


def pending_change_xml(change_id: str) -> bytes:
    """A GetChange answer saying PENDING: Route 53 reports every change PENDING until all its name
    servers have it; moto says INSYNC at once, so waiting would never be exercised."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo>'
        f"<Id>/change/{change_id}</Id><Status>PENDING</Status><SubmittedAt>{now}</SubmittedAt>"
        "</ChangeInfo></GetChangeResponse>"
    ).encode()


def error_response(start_response, code: str, message: str, status: int = 400):
    xml = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error>"
        "<RequestId>lifeboat-moto</RequestId></ErrorResponse>"
    )
    reason = {400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "text/xml")])
    return [xml.encode()]


ACCESS_KEY = re.compile(r"Credential=([^/]+)/")
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/")
TARGET_SERVICE = {"DynamoDB_20120810": "dynamodb", "AmazonSSM": "ssm", "AWSStepFunctions": "stepfunctions"}


def operation(environ, form):
    """(service, operation, protocol) of an AWS call; None for the emulator's own API."""
    path, method = environ.get("PATH_INFO") or "", environ.get("REQUEST_METHOD")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target and "." in target:
        prefix, op = target.split(".", 1)
        return TARGET_SERVICE.get(prefix, prefix.lower()), op, "json"
    if form.get("Action"):
        m = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return (m.group(2) if m else "unknown"), form["Action"], "query"
    if path.startswith("/2013-04-01/"):
        if RRSET_PATH.match(path):
            return "route53", "ChangeResourceRecordSets" if method == "POST" else "ListResourceRecordSets", "rest"
        if CHANGE_PATH.match(path):
            return "route53", "GetChange", "rest"
        return "route53", "Route53", "rest"
    return None


class Faults:
    """Fault injection between the SDK and moto (moto has none), per service and operation, at a
    rate, from a seeded generator: AWS's throttling errors, 503s, answers slower than the SDK's
    attempt timeout, dropped connections, and answers lost after the service acted.

    A fault is {"service"?, "operation"?, "target"? (a query parameter's value, e.g. one
    snapshot), "rate"? (1.0), "seed"? (0), "kinds"? (["throttle"]): "throttle" | "unavailable" |
    "slow" | "drop" | "lost", "delay"? (seconds, for "slow"), "code"? (an exact AWS error code),
    "times"? (at most this many), "caller"? (only calls signed with this access key id: the
    functions', not the tests' own checks)}. "drop" closes the connection once the request is
    read, before the service sees it: the client gets no status line at all, as when a load
    balancer or NAT resets a connection. "lost" lets the service act, then drops the connection
    instead of its answer: the client can't tell it from "drop", and retries a call that already
    happened.

    Here, in the WSGI front, rather than in a loopback proxy in the test harness: one place sees
    the service and operation of every call, from every client (moto's own Step Functions
    interpreter included), and counts them; a proxy would have to parse every protocol again.
    The seed makes the fault pattern repeatable for the same sequence of calls (concurrent calls
    can arrive in another order). Calls, injected faults and their kinds are counted."""

    THROTTLE = {"json": "ThrottlingException", "query": "Throttling", "rest": "Throttling"}

    def __init__(self):
        self.lock = threading.Lock()
        self.set([])

    def set(self, faults):
        import random

        with self.lock:
            self.faults = [(f, random.Random(f.get("seed", 0)), [0]) for f in faults]
            self.calls, self.injected, self.kinds = {}, {}, {}

    def stats(self):
        with self.lock:
            return {"calls": dict(self.calls), "injected": dict(self.injected), "kinds": dict(self.kinds)}

    def pick(self, call, form, environ):
        """The fault to inject on this call, or None."""
        service, op, _ = call
        key = f"{service}:{op}"
        caller = ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            for f, rng, used in self.faults:
                if f.get("service", service) != service or f.get("operation", op) != op:
                    continue
                if "target" in f and f["target"] not in form.values():
                    continue
                if "caller" in f and not (caller and caller.group(1) == f["caller"]):
                    continue
                if used[0] >= f.get("times", float("inf")) or rng.random() >= f.get("rate", 1.0):
                    continue
                used[0] += 1
                kind = rng.choice(f.get("kinds", ["throttle"]))
                self.injected[key] = self.injected.get(key, 0) + 1
                self.kinds[kind] = self.kinds.get(kind, 0) + 1
                return f, kind
        return None

    def answer(self, fault, kind, protocol, environ, start_response):
        """The injected answer, or None after a delay (a "slow" fault then lets the call through)."""
        if kind == "drop":
            # werkzeug hands the WSGI app its connection; shutting it down sends the client EOF
            # where the status line should be, and werkzeug's own write then fails quietly
            # (BrokenPipeError, which it treats as a dropped connection).
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            start_response("500 Dropped", [("Content-Length", "0")])
            return [b""]
        if kind == "slow":
            time.sleep(fault.get("delay", 12))
            return None
        code, status = fault.get("code"), 400
        if kind == "unavailable":
            code, status = code or "ServiceUnavailable", 503
        code = code or self.THROTTLE[protocol]
        message = f"injected by the test: {code}"
        if protocol == "json":
            return json_error(start_response, code, message, status)
        return error_response(start_response, code, message, status)


class Outage:
    """A region down, as on the day Lifeboat exists for: POST /_lifeboat/outage {"regions":
    ["us-east-1"], "route53": false} and from then every call signed for those regions (RDS, SSM,
    DynamoDB, SNS, Step Functions, Lambda, CloudWatch...) gets its connection reset before the
    service sees it, as an unreachable regional endpoint answers; "route53": true does the same to
    Route 53's control plane (ChangeResourceRecordSets, GetChange, ListResourceRecordSets: all
    signed for us-east-1, its only region), which is down or not on its own. The same POST resets
    the counts; GET /_lifeboat/outage answers every call seen since, per signing region and access
    key, refused or not: {"calls": {"us-east-1": {"lifeboat-functions": 3}}, "refused": ...}."""

    def __init__(self):
        self.lock = threading.Lock()
        self.set({})

    def set(self, body):
        with self.lock:
            self.regions = set(body.get("regions", []))
            self.route53 = bool(body.get("route53", False))
            self.calls, self.refused = {}, {}

    def stats(self):
        with self.lock:
            return {"regions": sorted(self.regions), "route53": self.route53, "calls": self.calls, "refused": self.refused}

    def refuse(self, environ):
        """Count the call; True when its endpoint is down."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = CREDENTIAL_SCOPE.search(auth)
        if not scope:
            return False
        region, service = scope.group(1), scope.group(2)
        key = ACCESS_KEY.search(auth)
        caller = key.group(1) if key else "?"
        with self.lock:
            per = self.calls.setdefault(region, {})
            per[caller] = per.get(caller, 0) + 1
            down = self.route53 if service == "route53" else region in self.regions
            if down:
                per = self.refused.setdefault(region, {})
                per[caller] = per.get(caller, 0) + 1
            return down


class Throttle:
    """RDS's request throttling, which moto lacks, switched on by the test. "Amazon RDS throttles API
    requests for each AWS account in each AWS Region", with "a token bucket"; "By default, you can
    make up to 300 requests in a burst and a sustained 12 requests per second", beyond which "the
    Amazon RDS API issues an error like the following one. ClientError: An error occurred
    (ThrottlingException) when calling the API_name operation: Rate exceeded." (RDS User Guide,
    Request throttling for the Amazon RDS API); on the wire the query-protocol code is `Throttling`
    ("An error occurred (Throttling) when calling the DescribeDBInstances operation ... Rate
    exceeded", aws-cli#8604), HTTP 400, and JSON-protocol services send ThrottlingException.

    POST /_lifeboat/throttle {"rate"? (tokens/s, 12), "burst"? (bucket size, 300), "services"?
    (signing names as in the credential scope: ["rds"]), "caller"? (an access key id: only calls
    signed with it)} gives each (account, signing region, service, API family) a full bucket; {}
    or {"rate": 0} turns it off. The families are ours: the guide names one limit and doesn't say
    whether reads and writes share it, so reads (Describe*, List*, Get*, Download*) and the rest
    each get a bucket of that size, and a run's listings don't starve its deletes, nor the
    reverse. GET answers {"throttled": {"<region>:<service>:<Operation>": n}, "calls": {...}}
    since the last POST: every AWS call no injected fault answered (`Faults` comes first), throttled
    or not, whoever signed it. Real time: the emulator's clock is moved by tests, a bucket's refill
    is not."""

    READS = ("Describe", "List", "Get", "Download")

    def __init__(self):
        self.lock = threading.Lock()
        self.set({})

    def set(self, body):
        with self.lock:
            self.rate = float(body.get("rate", 12)) if body else 0.0
            self.burst = float(body.get("burst", 300))
            self.services = set(body.get("services", ["rds"]))
            self.caller = body.get("caller")
            self.buckets, self.calls, self.throttled = {}, {}, {}

    def stats(self):
        with self.lock:
            return {"throttled": dict(self.throttled), "calls": dict(self.calls)}

    def refuse(self, environ, operation: str) -> bool:
        """Count the call; True when its bucket is empty."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = CREDENTIAL_SCOPE.search(auth)
        if not scope:
            return False
        region, service = scope.groups()
        key = f"{region}:{service}:{operation}"
        signer = ACCESS_KEY.search(auth)
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            if self.rate <= 0 or service not in self.services:
                return False
            if self.caller is not None and not (signer and signer.group(1) == self.caller):
                return False
            family = "read" if operation.startswith(self.READS) else "write"
            bucket = (caller_account(environ), region, service, family)
            now = freezegun.api.real_monotonic()
            tokens, then = self.buckets.get(bucket, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self.buckets[bucket] = (tokens - 1, now)
                return False
            self.buckets[bucket] = (tokens, now)
            self.throttled[key] = self.throttled.get(key, 0) + 1
            return True


class Arc:
    """Route 53 ARC's routing control cluster (route53-recovery-cluster), which moto lacks, and the
    part of Route 53's data plane that reads it. POST /_lifeboat/arc {"controls": [{"arn", "name",
    "state": "On" | "Off"}], "at_least_one_on": [[arn, ...]]} stands in for the control-config API
    people set a cluster up with (Lifeboat never calls it); the cluster's JSON API (X-Amz-Target
    ToggleCustomerAPI.*) then answers at any URL, signed for any region, so a test's config can
    name five "regional endpoints" and `Outage` takes some down. Rules from the Routing Control
    API Reference: a state is `On` or `Off` (ValidationException); an unknown control is
    ResourceNotFoundException; an update that would break a safety rule is refused whole
    (ConflictException), so "at least one On" turns Off the primary's control only in the same
    UpdateRoutingControlStates that turns the other On. GET /_lifeboat/route53/resolve?name=N
    answers N as Route 53's name servers would: a failover pair answers its PRIMARY while the
    PRIMARY's health check is healthy, else its SECONDARY; a RECOVERY_CONTROL health check is
    healthy while its routing control is On."""

    def __init__(self):
        self.lock = threading.Lock()
        self.controls, self.rules, self.health_checks = {}, [], {}

    def seed(self, body):
        with self.lock:
            for c in body.get("controls", []):
                self.controls[c["arn"]] = {"name": c.get("name", c["arn"].rsplit("/", 1)[-1]), "state": c["state"]}
            self.rules = body.get("at_least_one_on", [])
            return {"controls": self.controls, "at_least_one_on": self.rules}

    def answer(self, operation, request):
        """(status, body) of one cluster API call."""

        def err(code, message, status=400):
            return status, {"__type": code, "message": message}

        with self.lock:
            if operation == "GetRoutingControlState":
                arn = request.get("RoutingControlArn")
                if not arn:
                    return err("ValidationException", "RoutingControlArn is required")
                c = self.controls.get(arn)
                if c is None:
                    return err("ResourceNotFoundException", f"routing control {arn} not found", 404)
                return 200, {"RoutingControlArn": arn, "RoutingControlState": c["state"], "RoutingControlName": c["name"]}
            if operation in ("UpdateRoutingControlState", "UpdateRoutingControlStates"):
                entries = request.get("UpdateRoutingControlStateEntries") if operation.endswith("States") else [request]
                if not entries:
                    return err("ValidationException", "UpdateRoutingControlStateEntries is required")
                wanted = {}
                for e in entries:
                    arn, state = e.get("RoutingControlArn"), e.get("RoutingControlState")
                    if state not in ("On", "Off"):
                        return err("ValidationException", f"RoutingControlState {state!r} is not On or Off")
                    if arn not in self.controls:
                        return err("ResourceNotFoundException", f"routing control {arn} not found", 404)
                    wanted[arn] = state
                after = {arn: wanted.get(arn, c["state"]) for arn, c in self.controls.items()}
                overridden = set(request.get("SafetyRulesToOverride") or [])
                for i, rule in enumerate(self.rules):
                    if f"rule-{i}" not in overridden and not any(after.get(arn) == "On" for arn in rule):
                        return err("ConflictException", f"safety rule rule-{i} (at least one On of {rule}) would be broken")
                for arn, state in wanted.items():
                    self.controls[arn]["state"] = state
                return 200, {}
            return err("ValidationException", f"{operation} is not emulated")

    def remember_health_check(self, request_body: str, response_body: str):
        arn = re.search(r"<RoutingControlArn>(.*?)</RoutingControlArn>", request_body, re.S)
        hc = re.search(r"<HealthCheck>.*?<Id>(.*?)</Id>", response_body, re.S)
        if arn and hc:
            with self.lock:
                self.health_checks[hc.group(1)] = arn.group(1)

    def healthy(self, health_check_id) -> bool:
        with self.lock:
            arn = self.health_checks.get(health_check_id)
            return arn is None or self.controls.get(arn, {}).get("state") == "On"

    def resolve(self, name: str):
        from moto.route53.models import route53_backends

        wanted = name.rstrip(".").lower()
        sets = [
            r
            for z in route53_backends[DEFAULT_ACCOUNT_ID]["aws"].zones.values()
            for r in z.rrsets
            if r.name.rstrip(".").lower() == wanted
        ]

        def value(r):
            first = (r.records or [None])[0]
            return first.get("Value") if isinstance(first, dict) else first

        primary = next((r for r in sets if r.failover == "PRIMARY"), None)
        secondary = next((r for r in sets if r.failover == "SECONDARY"), None)
        if primary is not None:
            if not primary.health_check_id or self.healthy(primary.health_check_id):
                return value(primary)
            return value(secondary) if secondary is not None else None
        return value(sets[0]) if sets else None



def json_error(start_response, code, message, status=400):
    """An AWS JSON-protocol error (DynamoDB, SSM, Step Functions): its `__type` is the code."""
    body = json.dumps({"__type": code, "message": message}).encode()
    start_response(f"{status} Error", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))])
    return [body]


def json_answer(start_response, value):
    body = json.dumps(value).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def peek_body(environ) -> bytes:
    """The request's body, left readable for whoever reads it next (moto, or a later rule)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


def json_body(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return json.loads(environ["wsgi.input"].read(length) or b"{}")


FORWARD_TIMEOUT_SECONDS = 600  # cargo lambda watch builds a binary on its first invocation


def forward_invocation(base: str, function_name: str, payload: bytes) -> tuple[bytes, str | None]:
    """POST one invocation to cargo lambda watch: (response body, function error or None)."""
    url = f"{base.rstrip('/')}/2015-03-31/functions/{quote(function_name, safe='')}/invocations"
    request = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_SECONDS) as response:
            status, function_error, body = response.status, response.headers.get("X-Amz-Function-Error"), response.read()
    except urllib.error.HTTPError as e:  # cargo lambda: a function error is a 500
        status, function_error, body = e.code, e.headers.get("X-Amz-Function-Error"), e.read()
    except OSError as e:
        status, function_error, body = None, None, f"{url}: {e}".encode()
    if status is not None and 200 <= status < 300 and not function_error:
        return body, None
    try:
        has_error_type = "errorType" in json.loads(body)
    except (ValueError, TypeError):
        has_error_type = False
    if not has_error_type:
        detail = f"{url} answered {status}: " if status else ""
        body = json.dumps(
            {"errorType": "Lifeboat.ForwardFailed", "errorMessage": detail + body.decode("utf-8", "replace")}
        ).encode()
    return body, function_error or "Unhandled"


FUNCTION_URL = re.compile(r"^/_lifeboat/function-url/([A-Za-z0-9_-]+)(/.*)?$")


def forbidden(start_response, status: str = "403 Forbidden"):
    body = json.dumps({"Message": "Forbidden"}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def function_url_iam(environ, start_response, base: str, name: str, path: str):
    """A Lambda Function URL with AuthType AWS_IAM, which moto lacks: /_lifeboat/function-url/<function>/...
    stands for https://<id>.lambda-url.<region>.on.aws/... "If you choose the AWS_IAM auth type,
    users who need to invoke your Lambda function URL must have the lambda:InvokeFunctionUrl
    permission"; "users must sign their requests using AWS Signature Version 4 (SigV4)" (Lambda
    Developer Guide, Control access to Lambda function URLs). A request unsigned, badly signed,
    signed by a key moto doesn't know, or by a role session whose policies don't allow
    lambda:InvokeFunctionUrl on the function (condition key lambda:FunctionUrlAuthType = AWS_IAM)
    is answered 403 {"Message": "Forbidden"} and never reaches the function. Otherwise the
    function gets the Function URL event (payload 2.0), its requestContext.authorizer.iam naming
    the caller as AWS does (userArn: the IAM user, or arn:aws:sts::<account>:assumed-role/<role>/<session>),
    and its {statusCode, headers, body} answer becomes the HTTP response. Role sessions
    (sts:AssumeRole) only: an IAM user's policies are not evaluated here, so users are refused."""
    from moto.iam.access_control import AssumedRoleAccessKey, IAMRequest

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 ") or "X-Amz-Date" not in headers:
        return forbidden(start_response)
    region = (CREDENTIAL_REGION.search(auth) or [None, "us-east-1"])[1]
    account = caller_account(environ)
    query = environ.get("QUERY_STRING", "")
    url = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    try:
        request = IAMRequest(account_id=account, method=environ.get("REQUEST_METHOD", "GET"), path=url, data={},
                             body=body, headers=headers, action="InvokeFunctionUrl")
        request.check_signature()
    except Exception:  # moto raises its own errors for an unknown key or a wrong signature
        return forbidden(start_response)
    key = request._access_key
    if not isinstance(key, AssumedRoleAccessKey):
        return forbidden(start_response)
    principal = key.arn
    role = principal.split(":assumed-role/", 1)[1].rsplit("/", 1)[0]
    statements = role_statements(f"arn:aws:iam::{account}:role/{role}") or []
    function_arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    context = {"lambda:functionurlauthtype": ["AWS_IAM"], "aws:principalarn": [f"arn:aws:iam::{account}:role/{role}"]}
    if iam_decision(statements, "lambda:InvokeFunctionUrl", function_arn, context) != "allowed":
        return forbidden(start_response)
    now = datetime.now(timezone.utc)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path or "/",
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": name,
            "domainName": headers.get("Host", ""),
            "domainPrefix": name,
            "authorizer": {"iam": {"accessKey": key._access_key_id, "accountId": account,
                                   "callerId": f"AROA{role.upper()[:12]}:{key._session_name}",
                                   "userArn": principal, "userId": f"AROA{role.upper()[:12]}:{key._session_name}"}},
            "http": {"method": environ.get("REQUEST_METHOD", "GET"), "path": path or "/", "protocol": "HTTP/1.1",
                     "sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"), "userAgent": headers.get("User-Agent", "")},
            "requestId": f"{time.time_ns():x}",
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }
    answer, function_error = forward_invocation(base, name, json.dumps(event).encode())
    if function_error:
        body = json.dumps({"Message": "Internal Server Error"}).encode()
        start_response("502 Bad Gateway", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    reply = json.loads(answer or b"null")
    if not (isinstance(reply, dict) and "statusCode" in reply):
        reply = {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(reply)}
    out = reply.get("body") or ""
    out = base64.b64decode(out) if reply.get("isBase64Encoded") else out.encode()
    response_headers = [(k, v) for k, v in (reply.get("headers") or {}).items()] + [("Content-Length", str(len(out)))]
    start_response(f"{reply['statusCode']} Lifeboat", response_headers)
    return [out]


# Test doubles for the user's own Lambdas (a drill's validation_lambda): name -> {"result"} or {"error"}.
STUB_FUNCTIONS = {}


def stub_answer(name: str):
    """(body, function error) for a stubbed function, as Lambda answers a function error."""
    stub = STUB_FUNCTIONS[name]
    if "error" in stub:
        return json.dumps({"errorType": "ValidationFailed", "errorMessage": stub["error"]}).encode(), "Unhandled"
    return json.dumps(stub.get("result", {})).encode(), None


def forward_lambda_invokes(base: str) -> None:
    """Make moto's Lambda functions run in cargo lambda watch instead of docker."""
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, body, request_headers, response_headers):
        payload = body.encode() if isinstance(body, str) else body
        payload = payload or b"{}"
        invocation_type = request_headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":  # Lambda answers 202 at once and runs the function later
            threading.Thread(target=forward_invocation, args=(base, self.function_name, payload), daemon=True).start()
            return b""
        if self.function_name in STUB_FUNCTIONS:
            result, function_error = stub_answer(self.function_name)
        else:
            result, function_error = forward_invocation(base, self.function_name, payload)
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        response_headers["x-amz-log-result"] = base64.b64encode(b"").decode()
        return result

    LambdaFunction.invoke = invoke
    # With {"lambda": {"use_docker": false}} moto answers from a queue instead; forward those too.
    LambdaSimpleBackend.invoke = LambdaBackend.invoke


def own_client(port: int, region: str, service: str, account: str | None = None):
    """A boto3 client of this very server, for test set-up made through moto's own API; in
    `account` when given (moto's `x-moto-account-id` header), else the default account."""
    import boto3

    client = boto3.client(
        service,
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    if account:
        client.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return client


def subnet_group(port: int, region: str, name: str, account: str | None = None) -> str:
    """A DB subnet group over a new VPC's two subnets: what a restore into a VPC names."""
    ec2, rds = own_client(port, region, "ec2", account), own_client(port, region, "rds", account)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(zones)
    ]
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="Lifeboat restores", SubnetIds=subnets)
    return name


def rds_fleet(body) -> dict:
    """POST /_lifeboat/rds/fleet: a fleet of RDS resources at once, for tests at fleet size (11,000
    API calls take minutes). {"account"?, "instances": [{"region", "id", "engine"? (postgres),
    "kms_key"?, "replica_of"? (a source instance's ARN)}], "clusters": [{"region", "id",
    "engine"? (aurora-postgresql), "kms_key"?}], "snapshots": [{"region", "kind": "db" | "cluster",
    "source" (an instance or cluster id there), "id", "created" (ISO-8601), "tags"? {k: v}}]}.
    Made by moto's own backend methods with the arguments its API handlers pass them for the
    calls tests/src/lib.rs makes (create_instance, create_cluster, read_replica, and a manual
    snapshot taken with the clock moved to `created`, as `taken_at` does), so what the API
    answers afterwards can't tell them apart: each instance and cluster with its automated
    snapshot, quotas as moto enforces them, clusters `available` (moto's first read of a new
    cluster says `creating`; a test seeding a fleet has no use for that read)."""
    account = body.get("account", DEFAULT_ACCOUNT_ID)
    counts = {"instances": 0, "clusters": 0, "snapshots": 0}
    # Replicas last: their sources may be in the same list.
    for spec in sorted(body.get("instances", []), key=lambda i: "replica_of" in i):
        backend = rds_backend(spec["region"], account)
        if spec.get("replica_of"):
            backend.create_db_instance_read_replica(
                {"db_instance_identifier": spec["id"], "source_db_instance_identifier": spec["replica_of"], "db_instance_class": "db.t3.micro"}
            )
        else:
            backend.create_db_instance(
                {
                    "db_instance_identifier": spec["id"],
                    "engine": spec.get("engine", "postgres"),
                    "db_instance_class": "db.t3.micro",
                    "master_username": "lifeboat",
                    "master_user_password": "correct-horse-battery",
                    "allocated_storage": 20,
                    "storage_encrypted": bool(spec.get("kms_key")),
                    **({"kms_key_id": spec["kms_key"]} if spec.get("kms_key") else {}),
                }
            )
        counts["instances"] += 1
    for spec in body.get("clusters", []):
        cluster = rds_backend(spec["region"], account).create_db_cluster(
            {
                "db_cluster_identifier": spec["id"],
                "storage_encrypted": bool(spec.get("kms_key")),
                "engine": spec.get("engine", "aurora-postgresql"),
                "master_username": "lifeboat",
                "master_user_password": "correct-horse-battery",
                **({"kms_key_id": spec["kms_key"]} if spec.get("kms_key") else {}),
            }
        )
        cluster.status = "available"
        counts["clusters"] += 1
    for spec in body.get("snapshots", []):
        backend = rds_backend(spec["region"], account)
        tags = [{"Key": k, "Value": v} for k, v in spec.get("tags", {}).items()]
        # moto's clock (freezegun) gives naive UTC times; so does this.
        created = datetime.fromisoformat(spec["created"].replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)
        if spec["kind"] == "cluster":
            snap = backend.create_db_cluster_snapshot(spec["source"], spec["id"], tags=tags)
        else:
            backend.validate_db_snapshot_identifier(spec["id"], parameter_name="DBSnapshotIdentifier")
            snap = backend.create_db_snapshot(spec["source"], spec["id"], tags=tags)
            snap.original_snapshot_create_time = created
        snap.created = created
        counts["snapshots"] += 1
    return counts


def register_functions(port: int, region: str, names: list) -> dict:
    import zipfile

    def client(service):
        return own_client(port, region, service)

    iam, lam = client("iam"), client("lambda")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        role = iam.create_role(RoleName="lifeboat-test", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="lifeboat-test")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "forwarded to cargo lambda watch")
    arns = {}
    for name in names:
        try:
            arns[name] = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        except lam.exceptions.ResourceNotFoundException:
            arns[name] = lam.create_function(
                FunctionName=name, Runtime="provided.al2023", Role=role, Handler="bootstrap", Code={"ZipFile": code.getvalue()}
            )["FunctionArn"]
    return arns


def main() -> None:
    rds_across_accounts()
    events_say_whose_they_are()
    if os.environ.get("LIFEBOAT_LAMBDA_FORWARD"):
        forward_lambda_invokes(os.environ["LIFEBOAT_LAMBDA_FORWARD"])
    clock = freezegun.freeze_time(datetime.now(timezone.utc), tick=True)
    ticker = clock.start()
    app = DomainDispatcherApplication(create_backend_app)
    faults = Faults()
    outage = Outage()
    throttle = Throttle()
    arc = Arc()
    # moto gives every Route 53 change the same id, so "a change is pending" is one flag.
    pending_route53 = set()

    def query_form(environ):
        """The form of a query-protocol POST (RDS, SNS), leaving the body readable for moto."""
        if environ.get("REQUEST_METHOD") != "POST" or "json" in environ.get("CONTENT_TYPE", ""):
            return {}
        body = peek_body(environ)
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}

    def with_clock(environ, start_response):
        path = environ.get("PATH_INFO")
        if path == "/_lifeboat/clock":
            ticker.move_to(datetime.fromisoformat(json_body(environ)["now"].replace("Z", "+00:00")))
            return json_answer(start_response, {"now": datetime.now(timezone.utc).isoformat()})
        if path == "/_lifeboat/faults":
            if environ.get("REQUEST_METHOD") == "GET":
                return json_answer(start_response, faults.stats())
            given = json_body(environ).get("faults", [])
            # The first form, {"action", "target", "code"}: one RDS operation on one resource.
            faults.set([{"operation": f["action"], **{k: v for k, v in f.items() if k != "action"}} if "action" in f else f for f in given])
            return json_answer(start_response, {"faults": given})
        if path == "/_lifeboat/lambda/functions":
            # Test set-up: Lambda functions named like our binaries, for a state machine to call
            # (their invocations are forwarded, see LIFEBOAT_LAMBDA_FORWARD). Created through
            # moto's own API so they are what CreateFunction would make.
            body = json_body(environ)
            arns = register_functions(server.server_port, body.get("region", "us-east-1"), body["names"])
            return json_answer(start_response, {"arns": arns})
        if path == "/_lifeboat/lambda/stub":
            body = json_body(environ)
            arns = register_functions(server.server_port, body.get("region", "us-east-1"), [body["name"]])
            STUB_FUNCTIONS[body["name"]] = {k: body[k] for k in ("result", "error") if k in body}
            return json_answer(start_response, {"arns": arns})
        if path == "/_lifeboat/rds/subnet-group":
            body = json_body(environ)
            return json_answer(start_response, {"name": subnet_group(server.server_port, body["region"], body["name"], body.get("account"))})
        if path == "/_lifeboat/rds/orderable":
            body = json_body(environ)
            offering = (body["region"], body["engine"], body["class"])
            (WITHDRAWN_CLASSES.discard if body.get("offered", True) else WITHDRAWN_CLASSES.add)(offering)
            return json_answer(start_response, body)
        if path == "/_lifeboat/rds/snapshot-status":
            body = json_body(environ)
            snapshots(body["region"], body["kind"], body.get("account", DEFAULT_ACCOUNT_ID))[body["id"]].status = body["status"]
            return json_answer(start_response, body)
        if path == "/_lifeboat/outage":
            if environ.get("REQUEST_METHOD") == "GET":
                return json_answer(start_response, outage.stats())
            outage.set(json_body(environ))
            return json_answer(start_response, outage.stats())
        if path == "/_lifeboat/throttle":
            if environ.get("REQUEST_METHOD") != "GET":
                throttle.set(json_body(environ))
            return json_answer(start_response, throttle.stats())
        if path == "/_lifeboat/rds/fleet":
            from moto.core.exceptions import ServiceException

            try:
                return json_answer(start_response, rds_fleet(json_body(environ)))
            except (ServiceException, KeyError, ValueError) as e:  # a spec RDS would refuse, or one missing a field
                return json_error(start_response, "InvalidFleet", f"{type(e).__name__}: {e}")
        if path == "/_lifeboat/arc":
            return json_answer(start_response, arc.seed(json_body(environ)))
        if path == "/_lifeboat/route53/resolve":
            name = parse_qs(environ.get("QUERY_STRING", "")).get("name", [""])[0]
            return json_answer(start_response, {"name": name, "value": arc.resolve(name)})
        if outage.refuse(environ):
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            start_response("500 Dropped", [("Content-Length", "0")])
            return [b""]
        url = FUNCTION_URL.match(path or "")
        if url and os.environ.get("LIFEBOAT_LAMBDA_FORWARD"):
            return function_url_iam(environ, start_response, os.environ["LIFEBOAT_LAMBDA_FORWARD"], url.group(1), url.group(2) or "/")
        form = query_form(environ)
        call = operation(environ, form)
        lost = False
        if call:
            picked = faults.pick(call, form, environ)
            if picked and picked[1] == "lost":
                lost = True
            elif picked:
                injected = faults.answer(picked[0], picked[1], call[2], environ, start_response)
                if injected is not None:
                    return injected
            # After the faults, so their counts include throttled attempts.
            if not lost and throttle.refuse(environ, call[1]):
                if call[2] == "json":
                    return json_error(start_response, Faults.THROTTLE["json"], "Rate exceeded")
                return error_response(start_response, Faults.THROTTLE[call[2]], "Rate exceeded")
        if lost:
            # The service acts; its answer never reaches the client.
            list(served(environ, lambda status, headers, exc_info=None: lambda data: None))
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            start_response("500 Lost", [("Content-Length", "0")])
            return [b""]
        return served(environ, start_response)

    def served(environ, start_response):
        """What moto (behind the strict rules) answers."""
        path = environ.get("PATH_INFO")
        form = query_form(environ)
        rrset = RRSET_PATH.match(path or "")
        if rrset and environ.get("REQUEST_METHOD") == "POST":
            body = peek_body(environ)
            try:
                route53_change_rules(rrset.group(1), body.decode("utf-8", "replace"))
            except Refused as r:
                return error_response(start_response, r.code, r.message, r.status)
            # The change is PENDING for the first GetChange after it, then INSYNC.
            pending_route53.add("*")
        change = CHANGE_PATH.match(path or "")
        if change and environ.get("REQUEST_METHOD") == "GET" and "*" in pending_route53:
            pending_route53.discard("*")
            start_response("200 OK", [("Content-Type", "text/xml")])
            return [pending_change_xml(change.group(1))]
        CALLER.set(caller_account(environ))
        action = form.get("Action")
        if action:
            m = CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
            region = m.group(1) if m else "us-east-1"
            restored_clusters_take_a_while()
            try:
                for rule in STRICT_RULES:
                    rule(action, form, region)
            except Refused as r:
                return error_response(start_response, r.code, r.message, r.status)
            if action == "SimulatePrincipalPolicy":
                return simulate_principal_policy(form, start_response)
            if action == "DescribeOrderableDBInstanceOptions":
                return orderable_options(form, region, start_response)
            if action == "DescribeAccountAttributes" and "/rds/" in environ.get("HTTP_AUTHORIZATION", ""):
                return account_attributes(region, start_response)
            if action in RESTORES:
                answered = {}

                def keep(status, headers, exc_info=None):
                    answered["status"] = status
                    return start_response(status, headers, exc_info)

                body = b"".join(app(environ, keep))
                if answered.get("status", "").startswith("200"):
                    restores_take_rds_defaults(action, form, region)
                return [body]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target in KEY_ID_OR_ARN:
            key_arn_as_key_id(environ)
        if target.startswith("ToggleCustomerAPI."):
            status, answer = arc.answer(target.split(".", 1)[1], json_body(environ))
            body = json.dumps(answer).encode()
            start_response(f"{status} ARC", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/2013-04-01/healthcheck" and environ.get("REQUEST_METHOD") == "POST":
            raw = peek_body(environ)
            body = b"".join(app(environ, start_response))
            arc.remember_health_check(raw.decode("utf-8", "replace"), body.decode("utf-8", "replace"))
            return [body]
        if environ.get("HTTP_X_AMZ_TARGET") == "DynamoDB_20120810.TransactWriteItems":
            return transact_idempotently(environ, start_response)
        if target == "AmazonSSM.PutParameter":
            refused = ssm_value_refused(environ)
            if refused:
                return json_error(start_response, "ValidationException", refused)
        if environ.get("HTTP_X_AMZ_TARGET") == "AWSStepFunctions.StartExecution":
            refused = execution_name_refused(environ)
            if refused:
                return json_error(start_response, "InvalidName", refused)
        refused = compliance_retention_refused(environ)
        if refused:
            return s3_error(start_response, "AccessDenied", refused, 403)
        refused = organizations_member_read_refused(environ)
        if refused:
            return json_error(start_response, "AccessDeniedException", refused, 403)
        return app(environ, start_response)

    # "Providing a ClientRequestToken makes the call to TransactWriteItems idempotent, meaning
    # that multiple identical calls have the same effect as one single call. [...] A client
    # request token is valid for 10 minutes after the first request that uses it is completed.
    # [...] If you submit a request with the same client token but a change in other parameters
    # within the 10-minute idempotency window, DynamoDB returns an IdempotentParameterMismatch
    # exception." (DynamoDB API Reference, TransactWriteItems.) moto ignores the token, so an SDK
    # retry of a transaction that went through fails its own conditions there, not on AWS.
    tokens, running = {}, set()
    tokens_lock = threading.Lock()

    def transact_idempotently(environ, start_response):
        raw = peek_body(environ)
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return app(environ, start_response)
        token = request.pop("ClientRequestToken", None)
        if not token:
            return app(environ, start_response)
        params = json.dumps(request, sort_keys=True)
        now = time.monotonic()
        with tokens_lock:
            if token in running:
                # "TransactionInProgressException: The transaction with the given request token
                # is already in progress."
                return json_error(start_response, "TransactionInProgressException", "already in progress")
            seen = tokens.get(token)
            if seen and now - seen[0] < 600:
                if seen[1] != params:
                    return json_error(start_response, "IdempotentParameterMismatchException", "the token was used with other parameters")
                start_response(seen[2], seen[3])
                return [seen[4]]
            running.add(token)
        answered = {}

        def keep(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = b""
        try:
            body = b"".join(app(environ, keep))
        finally:
            with tokens_lock:
                running.discard(token)
                if body and answered.get("status", "").startswith("200"):
                    tokens[token] = (time.monotonic(), params, answered["status"], answered["headers"], body)
        return [body]

    server = make_server("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0, with_clock, threaded=True)
    # moto's Step Functions interpreter calls Lambda (and other services) at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(server.server_port)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
