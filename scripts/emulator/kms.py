"""KMS: the keys snapshots name (moto's stand-ins for the AWS managed aws/rds key), key policies
(who may create grants), and key ARNs where moto expects key ids."""

import io
import json
import re

from .iam import as_list, iam_wildcard


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
