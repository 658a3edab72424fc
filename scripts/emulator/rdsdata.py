"""The RDS Data API (rds-data) over the emulator's real database servers (issue 28: Aurora checked
without a VPC). moto's rds-data answers `/Execute` with canned results only, and none of
BeginTransaction, CommitTransaction or RollbackTransaction; here each call logs in to the real
server behind the cluster (`databases`) with the secret's user and password, over TLS verified
against the emulator's CA, and runs the SQL there, so a wrong password, a missing table or a
statement timeout is the database's own answer.

The rules of the Data API reference (https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/)
kept here, each where it is checked:
- resourceArn and secretArn are required (BeginTransaction, ExecuteStatement: "Required: Yes"),
  and sql for ExecuteStatement; transactionId for CommitTransaction and RollbackTransaction.
- The cluster's HTTP endpoint must be enabled (HttpEndpointNotEnabledException); RDS's
  EnableHttpEndpoint "applies only to Aurora Serverless v2 and provisioned DB clusters" (`rds`).
- "A transaction times out if no calls use its transaction ID in three minutes. If a transaction
  times out before it's committed, it's rolled back automatically" (BeginTransaction).
- "By default, a call times out if it's not finished processing within 45 seconds" (User Guide):
  the statement is cancelled then (StatementTimeoutException) unless continueAfterTimeout.
- Without a transactionId, "changes that result from the call are committed automatically".
- "Transaction has been aborted due to an error from a previous call" (the User Guide's
  troubleshooting): an error ends the transaction, and its id is TransactionNotFoundException.
- The database's message carries its code: "...; SQLState: 42P01" (PostgreSQL), "...; Error
  code: 1045; SQLState: 28000" (MySQL).
- Values: longValue, doubleValue, stringValue (DECIMAL and date/time types too), booleanValue,
  blobValue (base64) and isNull.
"""

import base64
import decimal
import json
import ssl
import threading
import time
import uuid
from datetime import date, datetime, timezone

from .common import CREDENTIAL_REGION, caller_account

PATHS = {"/BeginTransaction": "BeginTransaction", "/Execute": "ExecuteStatement",
         "/CommitTransaction": "CommitTransaction", "/RollbackTransaction": "RollbackTransaction"}
IDLE_LIMIT = 180.0
CALL_LIMIT = 45


class DataApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def is_rds_data(environ) -> bool:
    return environ.get("PATH_INFO") in PATHS and "/rds-data/" in environ.get("HTTP_AUTHORIZATION", "")


class Session:
    """One login to one server: a transaction's, or a single call's."""

    def __init__(self, engine: str, port: int, user: str, password: str, database: str | None, ca: str):
        self.engine, self.lock, self.used = engine, threading.Lock(), time.monotonic()
        context = ssl.create_default_context(cafile=ca)
        if engine == "postgres":
            import pg8000.native

            self.con = pg8000.native.Connection(
                user, host="127.0.0.1", port=port, password=password, database=database or "postgres",
                ssl_context=context, timeout=CALL_LIMIT + 5, application_name="rds-data")
            self.con.run(f"set statement_timeout = {CALL_LIMIT * 1000}")
        else:
            import pymysql

            self.con = pymysql.connect(
                host="127.0.0.1", port=port, user=user, password=password, database=database or None,
                ssl=context, connect_timeout=10, autocommit=True)
            with self.con.cursor() as c:
                c.execute(f"set session max_statement_time = {CALL_LIMIT}")

    def begin(self):
        if self.engine == "postgres":
            self.con.run("begin")
        else:
            with self.con.cursor() as c:
                c.execute("start transaction")

    def execute(self, sql: str):
        """(rows, column names, rows changed)."""
        if self.engine == "postgres":
            rows = self.con.run(sql)
            names = [c["name"] for c in (self.con.columns or [])]
            return ((rows or []) if names else []), names, 0 if names else max(self.con.row_count, 0)
        with self.con.cursor() as c:
            changed = c.execute(sql)
            names = [d[0] for d in (c.description or [])]
            return (list(c.fetchall()) if names else []), names, 0 if names else changed

    def end(self, commit: bool):
        if self.engine == "postgres":
            self.con.run("commit" if commit else "rollback")
        else:
            with self.con.cursor() as c:
                c.execute("commit" if commit else "rollback")

    def close(self):
        try:
            self.con.close()
        except Exception:  # already gone: the server ended it
            pass


def field(value) -> dict:
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blobValue": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return {"stringValue": value.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")}
    if isinstance(value, (date, decimal.Decimal)):
        return {"stringValue": str(value)}
    return {"stringValue": str(value)}


def database_error(e: Exception, elapsed: float = 0.0) -> DataApiError:
    """The server's own refusal, as the Data API passes it on: a statement still running at the
    call's limit is StatementTimeoutException, anything else DatabaseErrorException with the
    server's message (a wrong password and a timeout the caller set included: the Data API logs in
    and runs the SQL for the caller)."""
    detail = e.args[0] if e.args else e
    if isinstance(detail, dict):  # pg8000: the server's ErrorResponse fields
        text = f"ERROR: {detail.get('M', str(detail))}; SQLState: {detail.get('C', '')}"
    elif len(e.args) == 2 and isinstance(e.args[0], int):  # PyMySQL: (error number, message)
        text = f"{e.args[1]}; Error code: {e.args[0]}"
    else:  # the client's own: the connection, TLS
        text = " ".join(str(a) for a in e.args) or str(e)
    if elapsed >= CALL_LIMIT:
        return DataApiError("StatementTimeoutException", f"The statement ran past {CALL_LIMIT} seconds: {text}")
    return DataApiError("DatabaseErrorException", text)


class DataApi:
    def __init__(self):
        self.transactions = {}
        self.lock = threading.Lock()

    def expire(self):
        now = time.monotonic()
        with self.lock:
            gone = [t for t, (_, s) in self.transactions.items() if now - s.used > IDLE_LIMIT]
            sessions = [self.transactions.pop(t)[1] for t in gone]
        for s in sessions:
            s.close()

    def answer(self, environ, body: dict, start_response):
        from . import rds  # the cluster models and their servers

        op = PATHS[environ["PATH_INFO"]]
        try:
            result = self.act(op, environ, body, rds)
        except DataApiError as e:
            payload = json.dumps({"message": e.message}).encode()
            start_response(f"{e.status} Error", [("Content-Type", "application/json"), ("x-amzn-ErrorType", e.code),
                                                 ("Content-Length", str(len(payload)))])
            return [payload]
        payload = json.dumps(result).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def act(self, op, environ, body, rds):
        self.expire()
        if op in ("CommitTransaction", "RollbackTransaction"):
            for name in ("resourceArn", "secretArn", "transactionId"):
                if not body.get(name):
                    raise DataApiError("BadRequestException", f"{name} is required")
            with self.lock:
                held = self.transactions.pop(body["transactionId"], None)
            if held is None or held[0] != body["resourceArn"]:
                raise DataApiError("TransactionNotFoundException", f"Transaction {body['transactionId']} is not found")
            session = held[1]
            try:
                with session.lock:
                    session.end(op == "CommitTransaction")
            except Exception as e:  # the server's refusal
                raise database_error(e) from e
            finally:
                session.close()
            return {"transactionStatus": "Transaction Committed" if op == "CommitTransaction" else "Rollback Complete"}
        for name in ("resourceArn", "secretArn") + (("sql",) if op == "ExecuteStatement" else ()):
            if not body.get(name):
                raise DataApiError("BadRequestException", f"{name} is required")
        if op == "ExecuteStatement" and body.get("transactionId"):
            with self.lock:
                held = self.transactions.get(body["transactionId"])
            if held is None or held[0] != body["resourceArn"]:
                raise DataApiError("TransactionNotFoundException", f"Transaction {body['transactionId']} is not found")
            try:
                return self.run(held[1], body["sql"])
            except DataApiError:
                # Aborted: rolled back, and its id no longer found.
                with self.lock:
                    self.transactions.pop(body["transactionId"], None)
                try:
                    held[1].end(commit=False)
                except Exception:  # the connection is gone already
                    pass
                held[1].close()
                raise
        session = self.login(environ, body, rds)
        if op == "BeginTransaction":
            try:
                session.begin()
            except Exception as e:
                session.close()
                raise database_error(e) from e
            tid = base64.b64encode(uuid.uuid4().bytes * 2).decode()
            with self.lock:
                self.transactions[tid] = (body["resourceArn"], session)
            return {"transactionId": tid}
        try:
            return self.run(session, body["sql"])
        finally:
            session.close()

    def run(self, session: Session, sql: str):
        with session.lock:
            session.used = began = time.monotonic()
            try:
                rows, names, changed = session.execute(sql)
            except Exception as e:
                raise database_error(e, time.monotonic() - began) from e
            session.used = time.monotonic()
        answer = {"numberOfRecordsUpdated": changed, "generatedFields": []}
        if names:
            answer["records"] = [[field(v) for v in row] for row in rows]
        return answer

    def login(self, environ, body, rds) -> Session:
        from moto.secretsmanager.models import secretsmanager_backends

        from .databases import DATABASES, engine_of

        account = caller_account(environ)
        m = CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = m.group(1) if m else "us-east-1"
        arn = body["resourceArn"]
        cluster = rds.rds_resource(account, region, "cluster", arn) if ":cluster:" in arn else None
        if cluster is None:
            raise DataApiError("BadRequestException", f"Invalid cluster arn: {arn}")
        if not getattr(cluster, "http_endpoint_enabled", False):
            raise DataApiError("HttpEndpointNotEnabledException", f"HttpEndpoint is not enabled for resource {arn}")
        if cluster.status != "available":
            raise DataApiError("InvalidResourceStateException", f"The resource is in an invalid state: {cluster.status}")
        server = rds.server_of(cluster)
        engine = engine_of(cluster.engine)
        if server is None or engine is None:
            raise DataApiError("DatabaseUnavailableException", f"The database of {arn} is not available")
        try:
            secret = secretsmanager_backends[account][region].get_secret_value(body["secretArn"], None, None)
            creds = json.loads(secret.get("SecretString") or "{}")
            user, password = creds["username"], creds["password"]
        except Exception as e:  # no such secret, or not RDS's {username, password} shape
            raise DataApiError("SecretsErrorException" if "username" not in str(e) else "InvalidSecretException",
                               f"Secret {body['secretArn']} can't be used: {e}") from e
        try:
            return Session(engine, server.port, user, password, body.get("database"), DATABASES.ca_path())
        except Exception as e:
            raise database_error(e) from e
