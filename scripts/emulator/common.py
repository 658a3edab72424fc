"""What every part of the emulator shares: the account a call acts in, the refusal a rule raises,
reading a request's body without consuming it, and the three shapes an answer or error takes."""

import contextvars
import io
import json
import os
import re

from moto.core import DEFAULT_ACCOUNT_ID


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
