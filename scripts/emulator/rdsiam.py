"""RDS IAM database authentication behind the real servers: a login whose password is an IAM
token is checked as RDS checks it, here by the emulator.

RDS User Guide, "IAM database authentication for MariaDB, MySQL, and PostgreSQL": an
authentication token is a SigV4 presigned `connect` request (`<host>:<port>/?Action=connect&
DBUser=<user>&X-Amz-...`, service `rds-db`, signed for the database's region), good for 15
minutes, sent as the password over SSL/TLS; the DB instance or cluster must have IAM database
authentication enabled (off by default, also in restores); PostgreSQL's user must be granted
`rds_iam` ("the user can log in only with IAM"), MySQL's created `IDENTIFIED WITH
AWSAuthenticationPlugin AS 'RDS'`, and the client must send the token in cleartext
(`mysql_clear_password`).

How the servers ask: each engine hands a password it can't check itself to PAM, and PAM's
pam_exec runs `rds_iam_pam.py`, which passes the user, the token and the server's datadir (its
working directory) over this emulator's Unix socket (`<state>/rds-iam.sock`) and exits 0 only
on "ok". PostgreSQL: pg_hba `hostssl all +rds_iam ... pam` ahead of the password lines, so a
member of `rds_iam` logs in by token only, as on RDS. MariaDB has no AWSAuthenticationPlugin; its
stand-in is the PAM plugin with the cleartext client plugin: `CREATE USER u IDENTIFIED VIA pam
USING 'lifeboat-rds-iam'`. The PAM service file is global (/etc/pam.d), so this needs root, as
the servers' own users do; without it such logins are refused.

What is checked (the token is the emulator's only secret-free input, so everything RDS would
check): the signature, with the secret every caller of this emulator signs with (`testing`, as
moto's) or the one moto issued for the key; the algorithm, the credential scope
(`<date>/<region>/rds-db/aws4_request`) and its region against the database's; X-Amz-Expires at
most 900 and the token not expired by the real clock (the signer's clock, not the emulator's,
which tests move by months); host:port against the server's endpoint; Action=connect; DBUser
against the user logging in; the key's account against the database's; IAM authentication
enabled on the instance or cluster. The role's rds-db:connect permission is IAM's and is checked
on the template (tests/tests/iam.rs), not here: moto does not enforce IAM."""

import hashlib
import hmac
import json
import os
import socketserver
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, urlsplit

import freezegun

PAM_SERVICE = "lifeboat-rds-iam"
HELPER_DIR = "/usr/local/lib/lifeboat-emulator"
SOCKET = "rds-iam.sock"
MAX_EXPIRES = 900
# pam_exec hands its program at most PAM_MAX_RESP_SIZE bytes of the password (Linux-PAM's
# pam_exec.c: strndup(authtok, PAM_MAX_RESP_SIZE)): a token signed with a session token (STS,
# ~1 KB) arrives cut. Static keys' tokens, which the tests and the functions here sign with,
# are ~300 bytes.
PAM_MAX_RESP_SIZE = 512
# A token dated this far ahead of the real clock is refused (clock skew SigV4 tolerates).
SKEW = timedelta(minutes=5)
DEFAULT_SECRET = "testing"


def pam_ready() -> bool:
    """Install the PAM service and its helper (root only); False when they can't be."""
    if os.geteuid() != 0:
        return False
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rds_iam_pam.py")
    os.makedirs(HELPER_DIR, mode=0o755, exist_ok=True)
    helper = os.path.join(HELPER_DIR, "rds_iam_pam.py")
    service = (
        "# Lifeboat's emulator: RDS IAM tokens, checked by the emulator that runs the server.\n"
        f"auth required pam_exec.so expose_authtok quiet /usr/bin/python3 -I {helper}\n"
        "account required pam_permit.so\n"
    )
    # Several emulators at once write the same files: each whole, by rename.
    with open(here, "rb") as f:
        code = f.read()
    for path, content in ((helper, code), (f"/etc/pam.d/{PAM_SERVICE}", service.encode())):
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".lifeboat-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)
            raise
    return True


def secret_of(access_key: str) -> str:
    """The secret moto issued for an access key (IAM CreateAccessKey, and STS's temporary keys,
    which moto keeps in the same place), else the one every other caller here signs with."""
    from moto.iam.models import iam_backends

    # list(): moto's own guard against the dicts changing under another request's thread.
    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            key = backend.access_keys.get(access_key)
            if key is not None:
                return key.secret_access_key
    return DEFAULT_SECRET


def account_of(access_key: str) -> str:
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def refusal(token: str, user: str, expect: dict, now: datetime) -> str | None:
    """Why RDS would refuse `token` for `user` at the database `expect` describes ({"host",
    "port", "region", "account", "enabled", "name"}), or None when it would accept it."""
    if not expect.get("enabled"):
        return f"{expect['name']} does not have IAM database authentication enabled"
    url = urlsplit("https://" + token.strip())
    pairs = parse_qsl(url.query, keep_blank_values=True)
    q = dict(pairs)
    want_host = f"{expect['host']}:{expect['port']}"
    if url.netloc != want_host:
        return f"the token is for {url.netloc}, and this database answers at {want_host}"
    if url.path not in ("", "/") or q.get("Action") != "connect":
        return "not a connect token (Action=connect)"
    if q.get("DBUser") != user:
        return f"the token is for user {q.get('DBUser')!r}, not {user!r}"
    if q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or q.get("X-Amz-SignedHeaders") != "host":
        return "not a SigV4 presigned request signing the host header"
    parts = (q.get("X-Amz-Credential") or "").split("/")
    if len(parts) != 5 or parts[3] != "rds-db" or parts[4] != "aws4_request":
        return "its credential scope is not <key>/<date>/<region>/rds-db/aws4_request"
    key, day, region = parts[0], parts[1], parts[2]
    if region != expect["region"]:
        return f"signed for {region}, and the database is in {expect['region']}"
    if account_of(key) != expect["account"]:
        return f"signed by account {account_of(key)}'s key, and the database is account {expect['account']}'s"
    try:
        signed_at = datetime.strptime(q.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        expires = int(q.get("X-Amz-Expires", ""))
    except ValueError:
        return "X-Amz-Date or X-Amz-Expires is malformed"
    if not 1 <= expires <= MAX_EXPIRES or day != signed_at.strftime("%Y%m%d"):
        return "X-Amz-Expires must be 1 to 900 seconds, and the scope's date the signing date"
    if now > signed_at + timedelta(seconds=expires):
        return f"the token expired at {(signed_at + timedelta(seconds=expires)).isoformat()}"
    if signed_at > now + SKEW:
        return "the token is dated in the future"
    encode = lambda s: quote(s, safe="-_.~")  # noqa: E731 - SigV4's URI encoding
    canonical_query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(pairs) if k != "X-Amz-Signature")
    canonical = "\n".join(["GET", "/", canonical_query, f"host:{url.netloc}", "", "host", hashlib.sha256(b"").hexdigest()])
    scope = f"{day}/{region}/rds-db/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", q["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret_of(key)).encode(), day)
    for part in (region, "rds-db", "aws4_request"):
        k = _hmac(k, part)
    if not hmac.compare_digest(hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest(), q.get("X-Amz-Signature", "")):
        return "the signature does not match"
    return None


def serve(state: str, lookup) -> None:
    """Answer the PAM helper on `<state>/rds-iam.sock`: one JSON line {"dir", "user", "token"}
    in, one {"ok", "why"} out; each refusal's reason also goes to `<state>/rds-iam.log`.
    `lookup(datadir)` is the database the server at that datadir stands behind ({"host", "port",
    "region", "account", "enabled", "name"}), or None."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            try:
                ask = json.loads(self.rfile.readline(64 * 1024))
                expect = lookup(os.path.realpath(ask["dir"]))
                if expect is None:
                    why = f"no RDS resource stands behind {ask['dir']}"
                else:
                    now = datetime.fromtimestamp(freezegun.api.real_time(), timezone.utc)
                    why = refusal(ask["token"], ask["user"], expect, now)
                    if why and len(ask["token"].encode()) >= PAM_MAX_RESP_SIZE:
                        why += (f" (the token arrived cut at {PAM_MAX_RESP_SIZE} bytes: pam_exec passes no more, so "
                                "the emulator can't check one signed with temporary credentials' session token)")
            except Exception as e:  # noqa: BLE001 - a refusal, said, never a crash of the emulator
                why = f"malformed request: {e}"
            if why:
                # Not stdout: the tests read only its first line (the port) and close it.
                with open(os.path.join(state, "rds-iam.log"), "a") as log:
                    log.write(f"{datetime.now(timezone.utc).isoformat()} login refused: {why}\n")
            self.wfile.write((json.dumps({"ok": why is None, "why": why}) + "\n").encode())

    path = os.path.join(state, SOCKET)
    server = socketserver.ThreadingUnixStreamServer(path, Handler)
    server.daemon_threads = True
    # The servers' users (postgres; MariaDB's PAM tool runs as root) connect to it.
    os.chmod(path, 0o666)
    threading.Thread(target=server.serve_forever, name="rds-iam", daemon=True).start()
