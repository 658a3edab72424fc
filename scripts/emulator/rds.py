"""RDS: the rules of the RDS API reference that moto skips (`STRICT_RULES`, each quoting the sentence
it encodes), cross-account snapshot copies patched into moto (`rds_across_accounts`), the calls moto
lacks (DescribeOrderableDBInstanceOptions, DescribeAccountAttributes), restores that take RDS's
defaults and time, the test bed's set-up (`subnet_group`, `rds_fleet`), and the real databases
behind real-backed resources (`real_databases`, `database_control`; the servers: `databases`)."""

import contextlib
import contextvars
import json
import os
import re
import sys
import time
from datetime import datetime, timezone

from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import DBCluster, rds_backends

from .common import Refused, caller, caller_account, error_response, json_answer, json_body, own_client
from .databases import DATABASES, HOST, DbError, aware, engine_of
from .kms import default_key, key_policy_lets, kms_key
from . import rdsiam


ARN = re.compile(r"^arn:aws[a-z-]*:rds:([a-z0-9-]+):(\d{12}):(snapshot|cluster-snapshot):(.+)$")


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
    # A standalone cluster no longer replicates: its real database keeps what it has.
    server = DATABASES.bound(resource_key(cluster))
    if server is not None:
        server.promoted = True


def replicas_need_a_source_with_backups(action, form, region):
    """CreateDBInstanceReadReplica: "Your source DB instance or cluster must have backup retention
    enabled." The reference names no error code for it: InvalidDBInstanceState ("The DB instance
    isn't in a valid state") is our stand-in. moto replicates any source. Not encoded: "RDS creates
    read replicas with backups disabled" (moto gives the replica its source's retention period;
    what Lifeboat reads of a replica's own backups is not checked against it)."""
    if action != "CreateDBInstanceReadReplica":
        return
    source = form.get("SourceDBInstanceIdentifier", "")
    parts = source.split(":")
    home, source_id = (parts[3], parts[-1]) if source.startswith("arn:") and len(parts) >= 7 else (region, source)
    db = rds_backend(home).databases.get(source_id.lower())
    if db is not None and not db.backup_retention_period:
        raise Refused("InvalidDBInstanceState", f"DB instance {source_id} has automated backups disabled (BackupRetentionPeriod 0): it can't have read replicas.")


def cross_region_replicas_name_their_source_and_key(action, form, region):
    """CreateDBInstanceReadReplica, SourceDBInstanceIdentifier: "If the source DB instance is in a
    different AWS Region from the read replica, specify a valid DB instance ARN." KmsKeyId: "If you
    create an encrypted read replica in a different AWS Region, then you must specify a KMS key
    identifier for the destination AWS Region" and "You can't create an encrypted read replica from
    an unencrypted DB instance". The reference names no error codes: InvalidParameterValue and
    InvalidParameterCombination are our stand-ins. moto replicates across regions without either."""
    if action != "CreateDBInstanceReadReplica":
        return
    source = form.get("SourceDBInstanceIdentifier", "")
    parts = source.split(":")
    if not (source.startswith("arn:") and len(parts) >= 7):
        return  # a same-region source by name; a cross-region one by name is not found, as in RDS
    home, source_id = parts[3], parts[-1]
    db = rds_backend(home).databases.get(source_id.lower())
    if db is None:
        return
    encrypted = bool(getattr(db, "storage_encrypted", False))
    if form.get("KmsKeyId") and not encrypted:
        raise Refused("InvalidParameterCombination", f"{source_id} is not encrypted: its read replica can't be.")
    if home != region and encrypted and not form.get("KmsKeyId"):
        raise Refused(
            "InvalidParameterCombination",
            f"{source_id} is encrypted and in {home}: a read replica in {region} needs a KmsKeyId of {region}.",
        )


def cross_region_replica_clusters_name_their_source_and_key(action, form, region):
    """CreateDBCluster, ReplicationSourceIdentifier: "The Amazon Resource Name (ARN) of the source
    DB instance or DB cluster if this DB cluster is created as a read replica." KmsKeyId: "If you
    create a read replica of an encrypted DB cluster in another AWS Region, make sure to set
    KmsKeyId to a KMS key identifier that is valid in the destination AWS Region." The reference
    names no error codes: InvalidParameterValue and InvalidParameterCombination are our stand-ins.
    moto creates the replica cluster without either."""
    if action != "CreateDBCluster" or not form.get("ReplicationSourceIdentifier"):
        return
    source = form["ReplicationSourceIdentifier"]
    parts = source.split(":")
    if not (source.startswith("arn:") and len(parts) >= 7):
        raise Refused("InvalidParameterValue", f"ReplicationSourceIdentifier must be an ARN: {source}")
    if parts[5] != "cluster":
        return  # an RDS for MySQL instance as the source: moto's own handling
    home, source_id = parts[3], parts[-1]
    cluster = rds_backend(home).clusters.get(source_id.lower())
    if cluster is None:
        raise Refused("DBClusterNotFoundFault", f"DBCluster {source} not found.", 404)
    if home != region and str(getattr(cluster, "storage_encrypted", False)).lower() == "true" and not form.get("KmsKeyId"):
        raise Refused(
            "InvalidParameterCombination",
            f"{source_id} is encrypted: a replica cluster in {region} needs a KmsKeyId of {region}",
        )


@contextlib.contextmanager
def cross_region_replicas_take_the_default_parameter_group(form, region):
    """CreateDBInstanceReadReplica, DBParameterGroupName: "If you do not specify a value for
    DBParameterGroupName, then Amazon RDS uses the DBParameterGroup of source DB instance for a
    same region read replica, or the default DBParameterGroup for the specified DB engine for a
    cross region read replica." moto carries the source's group into the other region, where it
    does not exist, and fails (500): the source's group is set aside while moto creates it."""
    source = form.get("SourceDBInstanceIdentifier", "")
    parts = source.split(":")
    db = None
    if "DBParameterGroupName" not in form and source.startswith("arn:") and len(parts) >= 7 and parts[3] != region:
        db = rds_backend(parts[3]).databases.get(parts[-1].lower())
    saved = db.db_parameter_group_name if db is not None else None
    if db is not None:
        db.db_parameter_group_name = None
    try:
        yield
    finally:
        if db is not None:
            db.db_parameter_group_name = saved


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


def iam_auth_asked(form) -> bool:
    """EnableIAMDatabaseAuthentication of a restore: "By default, mapping isn't enabled" (RDS API
    reference, each restore action); moto copies the source's instead."""
    return (form.get("EnableIAMDatabaseAuthentication") or "").lower() == "true"


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
        db.enable_iam_database_authentication = iam_auth_asked(form)
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
    # "created from the source snapshot with a default configuration": the HTTP endpoint (Data
    # API) is off until EnableHttpEndpoint; moto copies the source's.
    cluster._enable_http_endpoint = False
    cluster.iam_auth = iam_auth_asked(form)
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
    promote_needs_a_read_replica,
    replicas_need_a_source_with_backups,
    cross_region_replicas_name_their_source_and_key,
    cross_region_replica_clusters_name_their_source_and_key,
    point_in_time_is_before_the_latest_restorable_time,
    forced_failover_needs_multi_az,
    promotion_makes_a_standalone_instance,
    removing_from_a_global_cluster_detaches,
]


# DescribeOrderableDBInstanceOptions: moto answers only aurora-postgresql and neptune, and ignores
# DBInstanceClass. RDS API reference: Engine is required; EngineVersion and DBInstanceClass filter
# the offerings. moto has no catalogue of what each region offers, so here every class is offered
# for every engine and version unless a test withdraws it (POST /_lifeboat/rds/orderable
# {"region", "engine", "class", "offered": false}), as a region that doesn't offer a class answers:
# an empty list.
WITHDRAWN_CLASSES = set()


def data_api_on_aurora() -> None:
    """CreateDBCluster's EnableHttpEndpoint and the EnableHttpEndpoint action, as RDS has them
    now: the Data API is "available with ... Aurora PostgreSQL - Serverless v2, provisioned, and
    Serverless v1; Aurora MySQL - Serverless v2, provisioned, and Serverless v1" (Data API
    reference). moto honours it only for a few Serverless v1 versions and says false otherwise."""
    original = DBCluster.enable_http_endpoint

    def setter(self, val):
        original.fset(self, val)
        if val is not None and self.engine in ("aurora-postgresql", "aurora-mysql") and self.engine_mode != "serverless":
            self._enable_http_endpoint = bool(val) and str(val).lower() != "false"

    DBCluster.enable_http_endpoint = property(original.fget, setter)


def http_endpoint(action, form, region, start_response):
    """EnableHttpEndpoint / DisableHttpEndpoint (ResourceArn, required): "This operation applies
    only to Aurora Serverless v2 and provisioned DB clusters"; a resource it can't find is
    ResourceNotFoundFault (404). moto has neither action."""
    arn = form.get("ResourceArn")
    if not arn:
        return error_response(start_response, "MissingParameter", "The request must contain the parameter ResourceArn")
    cluster = rds_resource(caller(), region, "cluster", arn) if ":cluster:" in arn else None
    if cluster is None:
        return error_response(start_response, "ResourceNotFoundFault", f"Resource {arn} not found.", 404)
    if cluster.engine not in ("aurora-postgresql", "aurora-mysql") or cluster.engine_mode == "serverless":
        return error_response(start_response, "InvalidParameterValue",
                              "EnableHttpEndpoint applies only to Aurora Serverless v2 and provisioned DB clusters")
    if cluster.status != "available":
        return error_response(start_response, "InvalidResourceStateFault",
                              "The operation can't be performed because another operation is in progress.")
    cluster._enable_http_endpoint = action == "EnableHttpEndpoint"
    enabled = "true" if cluster._enable_http_endpoint else "false"
    xml = (f"<{action}Response><{action}Result><ResourceArn>{cluster.db_cluster_arn}</ResourceArn>"
           f"<HttpEndpointEnabled>{enabled}</HttpEndpointEnabled></{action}Result>"
           f"<ResponseMetadata><RequestId>lifeboat-moto</RequestId></ResponseMetadata></{action}Response>")
    start_response("200 OK", [("Content-Type", "text/xml")])
    return [xml.encode()]


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


# SwitchoverGlobalCluster and FailoverGlobalCluster, which moto lacks. RDS API reference:
# GlobalClusterIdentifier "Must match the identifier of an existing global database cluster"
# (GlobalClusterNotFoundFault, 404); TargetDbClusterIdentifier is "the secondary Aurora DB cluster
# that you want to promote ... Use the Amazon Resource Name (ARN) for the identifier so that Aurora
# can locate the cluster in its AWS Region" (DBClusterNotFoundFault, 404, for anything but a
# member's ARN). FailoverGlobalCluster: "Failing over - Specify the AllowDataLoss parameter and
# don't specify the Switchover parameter" (both: InvalidParameterCombination); without
# AllowDataLoss it switches over. SwitchoverGlobalCluster: "demotes the current primary cluster to
# a secondary (read-only) cluster"; it is for "healthy Aurora global databases with running Aurora
# DB clusters and no Region-wide outages", so with a member's region down (POST /_lifeboat/outage)
# it is refused (InvalidGlobalClusterStateFault). A failover promotes the target with the
# primary's region down; the old primary stays a member, a secondary, as "the role of the current
# primary DB cluster and the selected (target) DB cluster are switched". Already the writer:
# InvalidDBClusterStateFault. Not emulated: FailoverState (the switch is done at once).
def switch_global_cluster(action, form, down, start_response):
    wanted = form.get("GlobalClusterIdentifier", "").rsplit(":global-cluster:", 1)[-1].lower()
    target = form.get("TargetDbClusterIdentifier", "")
    found = None
    for backend in rds_backends[caller()].values():
        found = backend.global_clusters.get(wanted) or found
    if found is None:
        return error_response(start_response, "GlobalClusterNotFoundFault", f"Global cluster {wanted} not found", 404)
    if action == "FailoverGlobalCluster" and form.get("AllowDataLoss") == "true" and form.get("Switchover") == "true":
        return error_response(
            start_response, "InvalidParameterCombination", "Specify AllowDataLoss or Switchover, not both"
        )
    member = next((c for c in found.members if c.db_cluster_arn == target), None)
    if member is None:
        return error_response(
            start_response, "DBClusterNotFoundFault", f"{target} is not a member of {wanted} (name it by ARN)", 404
        )
    if getattr(member, "is_writer", False):
        return error_response(start_response, "InvalidDBClusterStateFault", f"{target} is already the primary cluster")
    planned = not (action == "FailoverGlobalCluster" and form.get("AllowDataLoss") == "true")
    regions = {c.db_cluster_arn.split(":")[3] for c in found.members}
    if planned and regions & down:
        return error_response(
            start_response,
            "InvalidGlobalClusterStateFault",
            f"{wanted} has a member in a region that does not answer ({', '.join(sorted(regions & down))}): a "
            "switchover needs every cluster running; fail over with AllowDataLoss",
        )
    for c in found.members:
        c.is_writer = c is member
    # The promoted cluster replicates from nothing now: its real database takes writes.
    server = DATABASES.bound(resource_key(member))
    if server is not None:
        server.promoted = True
    xml = (
        f'<{action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><{action}Result><GlobalCluster>'
        f"<GlobalClusterIdentifier>{found.global_cluster_identifier}</GlobalClusterIdentifier>"
        f"<GlobalClusterArn>{found.global_cluster_arn}</GlobalClusterArn><Status>available</Status>"
        f"<Engine>{found.engine}</Engine></GlobalCluster></{action}Result>"
        f"<ResponseMetadata><RequestId>lifeboat-moto</RequestId></ResponseMetadata></{action}Response>"
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


# Real databases behind RDS resources (issue 28): which resource gets a server, with what data.
# The servers, dumps and checkpoints are `databases`; here, moto's RDS is hooked where a resource
# is born of another (a restore, a point-in-time restore, a read replica), where data is frozen (a
# snapshot, a copy), where replication ends (a promotion) and where a resource goes (a deletion),
# and its describe answers name the real server. The control endpoints are `database_control`.
RESTORING = contextvars.ContextVar("restoring", default=False)
RDS_RESOURCE_ARN = re.compile(r"^arn:aws[a-z-]*:rds:([a-z0-9-]+):(\d{12}):(db|cluster):(.+)$")


def resource_key(model) -> tuple:
    """(account, region, "instance" | "cluster", identifier) of a moto instance or cluster."""
    backend = model.backend
    if isinstance(model, DBCluster):
        return (backend.account_id, backend.region_name, "cluster", model.db_cluster_identifier)
    return (backend.account_id, backend.region_name, "instance", model.db_instance_identifier)


def server_of(model):
    """The real server behind an instance (its own, or its cluster's: every member of a cluster
    answers on the cluster's server, writer or reader) or a cluster; None when it has none."""
    try:
        key = resource_key(model)
    except AttributeError:  # a model still being built by moto's __init__
        return None
    server = DATABASES.bound(key)
    cluster = getattr(model, "db_cluster_identifier", None) if key[2] == "instance" else None
    if server is None and cluster:
        server = DATABASES.bound((key[0], key[1], "cluster", cluster))
    return server


def adopt_snapshots(model, dump) -> None:
    """The resource's snapshots taken before it had a server (moto's automated snapshot at its
    creation) hold what it held then: nothing yet, or the data it was restored with."""
    backend, (_, _, kind, ident) = model.backend, resource_key(model)
    if kind == "cluster":
        pool = [s for s in backend.cluster_snapshots.values() if s.db_cluster_identifier == ident]
    else:
        pool = [s for s in backend.database_snapshots.values() if s.db_instance_identifier == ident]
    for snap in pool:
        if getattr(snap, "lifeboat_dump", None) is None:
            snap.lifeboat_dump = dump


def rds_resource(account: str, region: str, kind: str, name: str):
    """The moto instance or cluster an identifier (in account/region) or RDS ARN names, or None."""
    m = RDS_RESOURCE_ARN.match(name or "")
    if m:
        region, account, arn_kind, name = m.groups()
        kind = "cluster" if arn_kind == "cluster" else "instance"
    backend = dict.get(rds_backends[account], region)
    if backend is None or not name:
        return None
    pool = backend.clusters if kind == "cluster" else backend.databases
    return pool.get(name.lower())


def replication_source(model):
    """The primary a replica instance or cluster replicates from, as moto records it, or None: an
    instance's source, a replica cluster's ReplicationSourceIdentifier, a global cluster's writer."""
    account, region, kind, _ = resource_key(model)
    if kind == "instance":
        source = getattr(model, "source_db_instance_identifier", None)
        return rds_resource(account, region, "instance", source) if source else None
    if getattr(model, "replication_source_identifier", None):
        return rds_resource(account, region, "cluster", model.replication_source_identifier)
    wanted = (getattr(model, "global_cluster_identifier", None) or "").rsplit(":global-cluster:", 1)[-1]
    for backend in rds_backends[account].values() if wanted else []:
        found = backend.global_clusters.get(wanted)
        if found is not None:
            # moto marks the writer only of clusters created into the global database; the one it
            # was created from is its first member.
            others = [c for c in found.members if c is not model]
            return next((c for c in others if getattr(c, "is_writer", False)), others[0] if others else None)
    return None


def master_login(model) -> tuple:
    """The master user and password a client of the resource would use: those of the secret RDS
    manages (ManageMasterUserPassword), else MasterUsername and MasterUserPassword."""
    secret = getattr(model, "master_user_secret", None)
    if getattr(model, "manage_master_user_password", False) and secret is not None:
        creds = json.loads(secret.secret.secret_string)
        return creds["username"], creds["password"]
    return model.master_username or "admin", model.__dict__.get("_master_user_password") or "lifeboat-" + os.urandom(8).hex()


def hooked(cls, name):
    """Replace cls.name by decorated(original, bound arguments)."""
    import functools
    import inspect

    original = getattr(cls, name)
    signature = inspect.signature(original)

    def wrap(hook):
        @functools.wraps(original)
        def method(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            return hook(original, self, bound, args, kwargs)

        setattr(cls, name, method)
        return hook

    return wrap


def global_clusters_know_their_writer() -> None:
    """Replica clusters, global databases and deleted clusters as RDS has them. CreateGlobalCluster, SourceDBClusterIdentifier: "The Amazon Resource Name (ARN) to use as
    the primary cluster of the global database." moto adds that cluster as the first member but
    never marks it the writer (IsWriter false on every member until a cluster is created into the
    global database); RDS reports its primary as the writer."""
    from moto.rds.models import RDSBackend, find_cluster

    @hooked(RDSBackend, "create_db_cluster")
    def _(original, self, bound, args, kwargs):
        # A cross-region replica cluster replicates its source's users: RDS's own example of one
        # ("Creating a cross-Region read replica DB cluster") names no MasterUsername; moto
        # demands one of every cluster but a global database's member.
        params = bound.arguments.get("kwargs") or {}
        source = params.get("replication_source_identifier") or ""
        if source.startswith("arn:") and not params.get("master_username"):
            try:
                primary = find_cluster(source)
                params["master_username"] = primary.master_username
                params.setdefault("master_user_password", getattr(primary, "_master_user_password", None))
            except Exception:  # noqa: BLE001 - an unknown source is refused by the rules first
                pass
        return original(self, *args, **kwargs)

    @hooked(RDSBackend, "delete_db_cluster")
    def _(original, self, bound, args, kwargs):
        # DeleteDBCluster: "When you delete a DB cluster, all automated backups for that DB
        # cluster are deleted and can't be recovered." moto keeps them, so a cluster created
        # again under that name within the minute collides with its own automated snapshot.
        cluster = original(self, *args, **kwargs)
        gone = bound.arguments.get("cluster_identifier")
        for sid, snap in list(self.cluster_snapshots.items()):
            cid = getattr(getattr(snap, "cluster", None), "db_cluster_identifier", None)
            if getattr(snap, "snapshot_type", "") == "automated" and cid == gone:
                del self.cluster_snapshots[sid]
        return cluster

    @hooked(RDSBackend, "create_global_cluster")
    def _(original, self, bound, args, kwargs):
        found = original(self, *args, **kwargs)
        if found.members and not any(getattr(m, "is_writer", False) for m in found.members):
            found.members[0].is_writer = True
        return found


def iam_target(datadir: str) -> dict | None:
    """The database the server at `datadir` stands behind, as an IAM token must name it
    (rdsiam.refusal's `expect`); None when none does."""
    with DATABASES.lock:
        bound = list(DATABASES.servers.items())
    for key, server in bound:
        if os.path.realpath(server.data) != datadir:
            continue
        model = rds_resource(*key)
        if model is None:
            return None
        return {"host": HOST, "port": server.port, "account": key[0], "region": key[1], "name": f"{key[2]} {key[3]}",
                "enabled": bool(model.iam_database_authentication_enabled)}
    return None


def iam_logins(state: str) -> None:
    """The IAM token checker for this emulator's servers; one that can't start is said, and
    token logins are then refused (the servers and password logins work as before)."""
    try:
        if not rdsiam.pam_ready():
            print("rds-iam: not root, so no PAM service of ours: logins with an IAM token will be refused", file=sys.stderr)
        rdsiam.serve(state, iam_target)
    except OSError as e:
        print(f"rds-iam: the token checker did not start ({e}): logins with an IAM token will be refused", file=sys.stderr)


def clusters_take_iam_auth() -> None:
    """EnableIAMDatabaseAuthentication on a cluster: "Valid for: Aurora DB clusters and Multi-AZ
    DB clusters" (RDS API reference, CreateDBCluster, RestoreDBClusterFromSnapshot,
    RestoreDBClusterToPointInTime, ModifyDBCluster); moto refuses it for any engine but aurora-*
    ("not supported by Multi-AZ DB clusters"), and its ModifyDBCluster sets an attribute its
    describe answer never reads (`iam_auth` is)."""
    from moto.rds.models import RDSBackend

    init = DBCluster.__init__

    def __init__(self, backend, **kwargs):
        asked = kwargs.get("enable_iam_database_authentication")
        multi_az = asked and not str(kwargs.get("engine") or "").startswith("aurora")
        init(self, backend, **(dict(kwargs, enable_iam_database_authentication=False) if multi_az else kwargs))
        if multi_az:
            self.iam_auth = True

    DBCluster.__init__ = __init__
    modify = RDSBackend.modify_db_cluster

    def modify_db_cluster(self, kwargs):
        ident = kwargs.get("new_db_cluster_identifier") or kwargs["db_cluster_identifier"]
        asked = kwargs.get("enable_iam_database_authentication")
        answer = modify(self, kwargs)  # a copy of the cluster it keeps
        if asked is not None:
            answer.iam_auth = self.clusters[ident].iam_auth = str(asked).lower() == "true"
        return answer

    RDSBackend.modify_db_cluster = modify_db_cluster


def real_databases() -> None:
    """Patch moto's RDS so real-backed resources answer with their server and carry their data."""
    from moto.rds.models import DBInstance, RDSBackend, find_cluster

    DATABASES.on_state = iam_logins
    clusters_take_iam_auth()

    # Endpoints: DescribeDBInstances' Endpoint {Address, Port} and DbInstancePort, DescribeDBClusters'
    # Endpoint, ReaderEndpoint and Port; and every answer that returns the resource (create,
    # restore, promote...), since moto serializes these same attributes.
    address, reader, writer = DBInstance.address.fget, DBCluster.reader_endpoint.fget, DBCluster.endpoint.fget
    DBInstance.address = property(lambda self: HOST if server_of(self) else address(self))
    DBInstance.db_instance_port = property(lambda self: server_of(self).port if server_of(self) else self.port)
    DBInstance.endpoint = property(lambda self: {"Address": self.address, "Port": self.db_instance_port})
    DBCluster.endpoint = property(lambda self: HOST if server_of(self) else writer(self))
    DBCluster.reader_endpoint = property(lambda self: HOST if server_of(self) else reader(self))
    # A cluster's port is a plain attribute moto copies into restores (get_cfg): kept where moto
    # keeps it, answered as the server's while there is one.
    DBCluster.port = property(
        lambda self: server_of(self).port if server_of(self) else self.__dict__.get("port"),
        lambda self, value: self.__dict__.__setitem__("port", value),
    )

    def restoring(call):
        token = RESTORING.set(True)
        try:
            return call()
        finally:
            RESTORING.reset(token)

    @hooked(RDSBackend, "create_db_snapshot")
    def _(original, self, bound, args, kwargs):
        # Manual, automated (moto's at creation), a final snapshot, a stop's: the data now.
        snap = original(self, *args, **kwargs)
        server = DATABASES.bound(resource_key(snap.database))
        if server is not None:
            snap.lifeboat_dump = DATABASES.checkpoint(server)
        return snap

    @hooked(RDSBackend, "create_db_cluster_snapshot")
    def _(original, self, bound, args, kwargs):
        snap = original(self, *args, **kwargs)
        server = DATABASES.bound(resource_key(snap.cluster))
        if server is not None:
            snap.lifeboat_dump = DATABASES.checkpoint(server)
        return snap

    def carry(target, find_source):
        """A copy holds its source's data (in another region or account too)."""
        try:
            source = find_source()
        except Exception:  # noqa: BLE001 - moto found it a moment ago; if not, there is nothing to carry
            return target
        dump = getattr(source, "lifeboat_dump", None)
        if dump is not None:
            target.lifeboat_dump = dump
        return target

    @hooked(RDSBackend, "copy_db_snapshot")
    def _(original, self, bound, args, kwargs):
        target = original(self, *args, **kwargs)
        return carry(target, lambda: self.get_db_snapshot(bound.arguments["source_db_snapshot_identifier"]))

    @hooked(RDSBackend, "copy_db_cluster_snapshot")
    def _(original, self, bound, args, kwargs):
        target = original(self, *args, **kwargs)
        return carry(target, lambda: self.get_db_cluster_snapshot(bound.arguments["source_db_cluster_snapshot_identifier"]))

    def born(model, dump, replica_of=None):
        if dump is not None:
            DATABASES.born_of(resource_key(model), dump, replica_of=replica_of)
            adopt_snapshots(model, dump)
        return model

    @hooked(RDSBackend, "restore_db_instance_from_db_snapshot")
    def _(original, self, bound, args, kwargs):
        new = restoring(lambda: original(self, *args, **kwargs))
        wanted = bound.arguments["from_snapshot_id"]
        if wanted.startswith("arn:aws:rds:"):
            wanted = self.extract_snapshot_name_from_arn(wanted)
        snap = self.describe_db_snapshots(db_instance_identifier=None, db_snapshot_identifier=wanted)[0]
        return born(new, getattr(snap, "lifeboat_dump", None))

    @hooked(RDSBackend, "restore_db_cluster_from_snapshot")
    def _(original, self, bound, args, kwargs):
        new = restoring(lambda: original(self, *args, **kwargs))
        snap = self.describe_db_cluster_snapshots(db_cluster_identifier=None, db_snapshot_identifier=bound.arguments["from_snapshot_id"])[0]
        return born(new, getattr(snap, "lifeboat_dump", None))

    def at_point_in_time(server, when, latest):
        """RestoreTime / RestoreToTime, or UseLatestRestorableTime (or neither): the newest."""
        latest = latest is True or str(latest).lower() == "true"
        return server.checkpoint_at(None if latest or not when else aware(when))

    @hooked(RDSBackend, "restore_db_instance_to_point_in_time")
    def _(original, self, bound, args, kwargs):
        new = restoring(lambda: original(self, *args, **kwargs))
        source = self.describe_db_instances(db_instance_identifier=bound.arguments["source_db_identifier"])[0]
        server = DATABASES.bound(resource_key(source))
        overrides = bound.arguments["overrides"]
        if server is None:
            return new
        return born(new, at_point_in_time(server, overrides.get("restore_time"), overrides.get("use_latest_restorable_time")))

    @hooked(RDSBackend, "restore_db_cluster_to_point_in_time")
    def _(original, self, bound, args, kwargs):
        new = restoring(lambda: original(self, *args, **kwargs))
        a = bound.arguments
        source = self.describe_db_clusters(db_cluster_identifier=a["source_db_cluster_identifier"])[0]
        server = DATABASES.bound(resource_key(source))
        if server is None:
            return new
        return born(new, at_point_in_time(server, a.get("restore_to_time"), a.get("use_latest_restorable_time")))

    @hooked(RDSBackend, "create_db_instance_read_replica")
    def _(original, self, bound, args, kwargs):
        # The source's data now; from then on only POST /_lifeboat/db/replicate catches it up.
        source_id = bound.arguments["db_kwargs"]["source_db_instance_identifier"]
        replica = original(self, *args, **kwargs)
        server = DATABASES.bound(resource_key(self.find_db_from_id(source_id)))
        if server is None:
            return replica
        return born(replica, DATABASES.dump(server), replica_of=server.key)

    @hooked(RDSBackend, "create_db_cluster")
    def _(original, self, bound, args, kwargs):
        # A replica cluster (ReplicationSourceIdentifier) or a global database's secondary, born
        # of a real primary; not a restore, which moto makes through here too.
        cluster = original(self, *args, **kwargs)
        if RESTORING.get():
            return cluster
        source = None
        try:
            if cluster.replication_source_identifier:
                ident = cluster.replication_source_identifier
                source = find_cluster(ident) if ident.startswith("arn:") else self.clusters.get(ident.lower())
            elif cluster.global_cluster_identifier:
                source = replication_source(cluster)
        except Exception:  # noqa: BLE001 - moto accepts sources it can't find; so does this
            source = None
        server = DATABASES.bound(resource_key(source)) if source is not None else None
        if server is None:
            return cluster
        return born(cluster, DATABASES.dump(server), replica_of=server.key)

    @hooked(RDSBackend, "promote_read_replica")
    def _(original, self, bound, args, kwargs):
        # Promotion keeps the replica's data as it is: what replication had brought, no more.
        db = original(self, *args, **kwargs)
        server = DATABASES.bound(resource_key(db))
        if server is not None:
            server.promoted = True
        return db

    @hooked(RDSBackend, "promote_read_replica_db_cluster")
    def _(original, self, bound, args, kwargs):
        cluster = original(self, *args, **kwargs)
        server = DATABASES.bound(resource_key(cluster))
        if server is not None:
            server.promoted = True
        return cluster

    @hooked(RDSBackend, "delete_db_instance")
    def _(original, self, bound, args, kwargs):
        db = original(self, *args, **kwargs)
        DATABASES.release(resource_key(db))
        return db

    @hooked(RDSBackend, "delete_db_cluster")
    def _(original, self, bound, args, kwargs):
        cluster = original(self, *args, **kwargs)
        DATABASES.release(resource_key(cluster))
        return cluster


def db_error(start_response, code: str, message: str, status: int):
    body = json.dumps({"error": code, "message": message}).encode()
    reason = {400: "Bad Request", 404: "Not Found", 409: "Conflict"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def database_control(environ, start_response):
    """The real databases' control endpoints, /_lifeboat/db/... (JSON; `account` in the body, else
    the caller's as for any call, else the default account):
    GET  ca          the CA's PEM, which every server's certificate chains to.
    GET  servers     {"dir", "ca", "servers": [{"account", "region", "kind", "id", "engine", "host",
                     "port", "pid", "admin_user", "promoted", "replica_of", "checkpoints", "dir"}]}.
    POST attach      {"region", "instance" | "cluster"}: the resource gets an empty server of its
                     engine with its master user (and DBName's database) and its first checkpoint.
    POST checkpoint  {"region", "instance" | "cluster"}: a timed dump for point-in-time restores.
    POST replicate   {"region", "instance" | "cluster", "source"?}: a replica's data becomes its
                     source's current data (replication caught up now); 409 once it was promoted.
    attach and replicate answer {"host", "port", "engine": "postgres" | "mysql", "admin_user",
    "admin_password", "ca"} (replicate adds "source" and "at"); checkpoint {"at", "checkpoints"}.
    Refusals are {"error", "message"} with 400, 404 (no such resource) or 409 (not real, promoted,
    not a replica); a server that fails to start is a 500."""
    path = environ.get("PATH_INFO", "")
    verb = path[len("/_lifeboat/db/"):]
    try:
        if verb == "ca":
            with open(DATABASES.ca_path(), "rb") as f:
                pem = f.read()
            start_response("200 OK", [("Content-Type", "application/x-pem-file"), ("Content-Length", str(len(pem)))])
            return [pem]
        if verb == "servers":
            return json_answer(start_response, DATABASES.listing())
        if environ.get("REQUEST_METHOD") != "POST" or verb not in ("attach", "checkpoint", "replicate"):
            raise DbError("UnknownAction", f"{environ.get('REQUEST_METHOD')} {path} is not a control endpoint", 404)
        body = json_body(environ)
        account = body.get("account") or caller_account(environ)
        region = body.get("region") or "us-east-1"
        kind = "cluster" if body.get("cluster") else "instance" if body.get("instance") else None
        if kind is None:
            raise DbError("MissingParameter", 'name an "instance" or a "cluster"')
        model = rds_resource(account, region, kind, body[kind])
        if model is None:
            raise DbError("NotFound", f"no {kind} {body[kind]} in {account} {region}", 404)
        key = resource_key(model)
        if verb == "attach":
            engine = engine_of(model.engine)
            if engine is None:
                raise DbError("UnsupportedEngine", f"{model.engine} has no real database here (postgres, aurora-postgresql, mysql, mariadb, aurora-mysql)")
            if kind == "instance" and getattr(model, "db_cluster_identifier", None):
                raise DbError("ClusterMember", f"{body[kind]} is a member of cluster {model.db_cluster_identifier}: attach the cluster")
            user, password = master_login(model)
            database = model.database_name if kind == "cluster" else model.db_name
            server = DATABASES.attach(key, engine, user, password, database)
            adopt_snapshots(model, server.checkpoints[0][1])
            return json_answer(start_response, DATABASES.answer(server))
        server = DATABASES.bound(key)
        if server is None:
            raise DbError("NotReal", f"{kind} {body[kind]} has no real database: POST /_lifeboat/db/attach first", 409)
        if verb == "checkpoint":
            dump = DATABASES.checkpoint(server)
            return json_answer(start_response, {"at": dump.taken_at.isoformat(), "checkpoints": [t.isoformat() for t, _ in server.checkpoints]})
        if server.promoted:
            raise DbError("Promoted", f"{kind} {body[kind]} was promoted: it no longer replicates", 409)
        source = rds_resource(account, region, kind, body["source"]) if body.get("source") else replication_source(model)
        if source is None:
            raise DbError("NotAReplica", f"{kind} {body[kind]} replicates from nothing the emulator knows: name its primary in \"source\"", 409)
        source_server = DATABASES.bound(resource_key(source))
        if source_server is None:
            raise DbError("NotReal", f"the source {resource_key(source)[3]} has no real database", 409)
        if source_server is server or source_server.engine != server.engine:
            raise DbError("InvalidSource", f"{resource_key(source)[3]} can't be the source of {body[kind]}")
        dump = DATABASES.replicate(server, source_server)
        answer = DATABASES.answer(server)
        answer.update({"source": dict(zip(("account", "region", "kind", "id"), source_server.key)), "at": dump.taken_at.isoformat()})
        return json_answer(start_response, answer)
    except DbError as e:
        return db_error(start_response, e.code, e.message, e.status)
