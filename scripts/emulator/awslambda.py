"""Lambda: invocations forwarded to cargo lambda watch, stand-ins for a user's own functions, the
functions a test registers, and Function URLs with AuthType AWS_IAM."""

import base64
import io
import json
import re
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from urllib.parse import quote

from .common import CREDENTIAL_REGION, caller_account, own_client
from .iam import iam_decision, role_statements


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
