"""Fault injection between the SDK and moto, and what service and operation a call is."""

import re
import socket
import threading
import time

from .common import ACCESS_KEY, CREDENTIAL_SCOPE, error_response, json_error
from .rdsdata import PATHS as DATA_API_PATHS
from .route53 import CHANGE_PATH, RRSET_PATH


# Lambda Invoke: POST /2015-03-31/functions/{FunctionName}/invocations (Lambda API reference).
LAMBDA_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations$")

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
    if path in DATA_API_PATHS and "/rds-data/" in environ.get("HTTP_AUTHORIZATION", ""):
        return "rds-data", DATA_API_PATHS[path], "json"
    if LAMBDA_INVOKE_PATH.match(path) and method == "POST":
        # Lambda's REST-JSON protocol: its errors are JSON, as json_error answers them.
        return "lambda", "Invoke", "json"
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
