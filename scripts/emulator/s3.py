"""S3: Object Lock compliance mode as S3 enforces it."""

import re
from datetime import datetime, timezone
from urllib.parse import parse_qs

from .common import caller_account, peek_body


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
