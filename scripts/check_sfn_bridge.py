"""Check that moto's Step Functions interpreter runs Lambda tasks through the cargo lambda bridge.

Run with .venv/bin/python scripts/check_sfn_bridge.py. Starts scripts/moto_server.py with
LIFEBOAT_LAMBDA_FORWARD pointing at a stub of `cargo lambda watch`'s invoke endpoint (in this
script), runs a failover-shaped state machine in moto and checks what reaches the stub and how
the executions end. Prints what it measured; exits 1 on the first failed check.
"""

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import urllib.request
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
PREFIX = "/2015-03-31/functions/"

calls = []  # (function name, payload) in arrival order
calls_lock = threading.Lock()
tokens = {}  # execution name -> task token the approval function received


class CargoLambdaStub(BaseHTTPRequestHandler):
    """Imitates `cargo lambda watch`: POST /2015-03-31/functions/<name>/invocations. A function
    error is a 500 with the runtime's {"errorType", "errorMessage"} (what cargo lambda answers);
    `fatal` answers the other shape (200 + X-Amz-Function-Error) to cover both."""

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if not (self.path.startswith(PREFIX) and self.path.endswith("/invocations")):
            return self.answer(404, {"title": "not found"})
        name = self.path[len(PREFIX) : -len("/invocations")]
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        with calls_lock:
            calls.append((name, payload))
            seen = sum(1 for n, p in calls if n == name and isinstance(p, dict) and p.get("run") == payload.get("run"))
        if name == "failover-steps" and payload.get("step") == "check":
            mode = payload.get("mode")
            if mode == "flaky" and seen == 1:
                return self.answer(500, {"errorType": "Retryable", "errorMessage": "replica lag unknown"})
            if mode == "fatal":
                err = {"errorType": "NonRetryable", "errorMessage": "no replica in target region"}
                return self.answer(200, err, [("X-Amz-Function-Error", "Unhandled")])
            return self.answer(200, {"healthy": mode == "healthy", "attempts": seen})
        if name == "failover-steps" and payload.get("step") == "promote":
            return self.answer(200, {"promoted": True, "db": payload.get("db"), "approved_by": payload["approval"]["by"]})
        if name == "approval-notifier":
            tokens[payload["run"]] = payload["token"]
            return self.answer(200, {"notified": True})
        if name == "missing-binary":  # what cargo lambda answers for a binary it doesn't know
            return self.answer(404, {"title": "Missing function", "detail": "that function doesn't exist"})
        return self.answer(200, {"echo": payload})


DEFINITION = {
    "Comment": "failover-shaped: check (retried), choose, wait, approve (callback), promote",
    "StartAt": "Check",
    "States": {
        "Check": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "failover-steps",
                "Payload": {"step": "check", "run.$": "$$.Execution.Name", "mode.$": "$.mode", "db.$": "$.db"},
            },
            "ResultSelector": {"healthy.$": "$.Payload.healthy", "attempts.$": "$.Payload.attempts"},
            "ResultPath": "$.check",
            "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.0}],
            "Catch": [{"ErrorEquals": ["NonRetryable"], "ResultPath": "$.error", "Next": "NotPossible"}],
            "Next": "Healthy?",
        },
        "Healthy?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.check.healthy", "BooleanEquals": True, "Next": "AlreadyHealthy"}],
            "Default": "Pause",
        },
        "AlreadyHealthy": {"Type": "Succeed"},
        "Pause": {"Type": "Wait", "SecondsPath": "$.pause", "Next": "Approve"},
        "Approve": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "approval-notifier",
                "Payload": {
                    "token.$": "$$.Task.Token",
                    "run.$": "$$.Execution.Name",
                    "message.$": "States.Format('approve failover of {} ({} checks)', $.db, $.check.attempts)",
                },
            },
            "TimeoutSecondsPath": "$.approval_timeout",
            "ResultPath": "$.approval",
            "Catch": [
                {"ErrorEquals": ["Rejected"], "ResultPath": "$.error", "Next": "Rejected"},
                {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "TimedOut"},
            ],
            "Next": "Promote",
        },
        "Promote": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "failover-steps", "Payload.$": "States.JsonMerge($, States.StringToJson('{\"step\": \"promote\"}'), false)"},
            "OutputPath": "$.Payload",
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "Parameters": {"db.$": "$.db", "promoted.$": "$.promoted", "by.$": "$.approved_by"}, "End": True},
        "Rejected": {"Type": "Fail", "Error": "FailoverRejected", "Cause": "an operator rejected the failover"},
        "TimedOut": {"Type": "Pass", "Result": "approval timed out", "ResultPath": "$.outcome", "End": True},
        "NotPossible": {"Type": "Pass", "Result": "not possible", "ResultPath": "$.outcome", "End": True},
    },
}

failures = []


def check(what, ok, measured):
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {measured}")
    if not ok:
        failures.append(what)


def wait_for(predicate, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def main():
    stub = ThreadingHTTPServer(("127.0.0.1", 0), CargoLambdaStub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    env = dict(os.environ, LIFEBOAT_LAMBDA_FORWARD=f"http://127.0.0.1:{stub.server_port}")
    env.pop("MOTO_PORT", None)  # moto_server.py must set it itself
    moto = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/moto_server.py")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = moto.stdout.readline()
        assert line.startswith("PORT "), f"moto said {line!r}: {moto.stderr.read()}"
        run(f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        moto.terminate()
        moto.wait(10)
        stub.shutdown()
    print(f"\n{len(failures)} failed" + (f": {failures}" if failures else ""))
    sys.exit(1 if failures else 0)


def run(endpoint):
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    lam, sfn = boto3.client("lambda", **kw), boto3.client("stepfunctions", **kw)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = boto3.client("iam", **kw).create_role(RoleName="lifeboat", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "dummy")
    for name in ["failover-steps", "approval-notifier", "missing-binary"]:
        lam.create_function(
            FunctionName=name, Runtime="provided.al2023", Role=role, Handler="bootstrap", Code={"ZipFile": buf.getvalue()}
        )

    # The Lambda Invoke API itself.
    r = lam.invoke(FunctionName="failover-steps", Payload=json.dumps({"step": "check", "run": "direct", "mode": "healthy"}))
    check("Invoke API reaches the stub", r["StatusCode"] == 200 and "FunctionError" not in r, (r["StatusCode"], json.load(r["Payload"])))
    r = lam.invoke(FunctionName="failover-steps", Payload=json.dumps({"step": "check", "run": "direct-fatal", "mode": "fatal"}))
    check("Invoke API function error", r.get("FunctionError") == "Unhandled", (r.get("FunctionError"), json.load(r["Payload"])))
    r = lam.invoke(FunctionName="failover-steps", Payload=json.dumps({"step": "check", "run": "direct-flaky", "mode": "flaky"}))
    check("Invoke API 500 becomes a function error", r.get("FunctionError") == "Unhandled", (r.get("FunctionError"), json.load(r["Payload"])))
    r = lam.invoke(FunctionName="missing-binary", Payload=b"{}")
    check("Invoke API unknown binary", r.get("FunctionError") == "Unhandled", (r.get("FunctionError"), json.load(r["Payload"])))

    req = urllib.request.Request(
        f"{endpoint}/moto-api/config", data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(), method="POST"
    )
    urllib.request.urlopen(req).read()
    sm = sfn.create_state_machine(name="failover", definition=json.dumps(DEFINITION), roleArn=role)["stateMachineArn"]

    def start(name, **inp):
        base = {"db": "orders", "mode": "flaky", "pause": 1, "approval_timeout": 30}
        return sfn.start_execution(stateMachineArn=sm, name=name, input=json.dumps({**base, **inp}))["executionArn"]

    def finish(arn, timeout=30):
        d = wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(sfn.describe_execution(executionArn=arn)), timeout)
        return d or sfn.describe_execution(executionArn=arn)

    def output(d):
        return json.loads(d.get("output") or "null")

    def history(arn):
        return sfn.get_execution_history(executionArn=arn)["events"]

    # 1. Retry on Retryable, Choice, Wait SecondsPath, callback token, SendTaskSuccess, Payload.$ + intrinsics.
    t0 = time.monotonic()
    arn = start("approve")
    token = wait_for(lambda: tokens.get("approve"), 30)
    took = time.monotonic() - t0
    check("task token reaches the approval function", bool(token), f"{(token or '')[:24]}... after {took:.1f}s")
    notify = [p for n, p in calls if n == "approval-notifier" and p.get("run") == "approve"]
    check("States.Format in Parameters", notify and notify[0]["message"] == "approve failover of orders (2 checks)", notify[0].get("message") if notify else None)
    checks = [p for n, p in calls if n == "failover-steps" and p.get("run") == "approve" and p.get("step") == "check"]
    check("Retry on errorType Retryable (500 from the function)", len(checks) == 2, f"{len(checks)} check calls")
    check("Wait SecondsPath=1 then Retry IntervalSeconds=1 (>= 2 s before the token)", took >= 2.0, f"{took:.1f}s")
    sfn.send_task_success(taskToken=token, output=json.dumps({"by": "alice"}))
    d = finish(arn)
    check("SendTaskSuccess resumes to SUCCEEDED", d["status"] == "SUCCEEDED", (d["status"], output(d)))
    check("output of Payload.$ JsonMerge / OutputPath / Pass Parameters", output(d) == {"db": "orders", "promoted": True, "by": "alice"}, output(d))
    promote = [p for n, p in calls if n == "failover-steps" and p.get("step") == "promote"]
    check("Payload.$ carries the whole state (ResultPath $.check, $.approval)", bool(promote) and promote[0].get("check") == {"healthy": False, "attempts": 2} and promote[0].get("approval") == {"by": "alice"}, promote[0] if promote else None)
    waits = {e["type"]: e["timestamp"] for e in history(arn) if e["type"] in ("WaitStateEntered", "WaitStateExited")}
    if len(waits) == 2:
        secs = (waits["WaitStateExited"] - waits["WaitStateEntered"]).total_seconds()
        check("Wait state lasted SecondsPath", 0.9 <= secs < 5, f"{secs:.2f}s")
    else:
        check("Wait state events in history", False, waits)

    # 2. StartExecution with the same name twice.
    arn2 = start("dup")
    again = start("dup")
    check("same name + same input while RUNNING: same execution", again == arn2, again)
    try:
        start("dup", db="other")
        check("same name + other input: ExecutionAlreadyExists", False, "accepted")
    except ClientError as e:
        check("same name + other input: ExecutionAlreadyExists", e.response["Error"]["Code"] == "ExecutionAlreadyExists", e.response["Error"]["Code"])
    wait_for(lambda: tokens.get("dup"), 30)
    sfn.stop_execution(executionArn=arn2)
    d = finish(arn2, 10)
    check("StopExecution", d["status"] == "ABORTED", d["status"])
    try:
        start("dup")
        check("same name after it ended: ExecutionAlreadyExists", False, "accepted")
    except ClientError as e:
        check("same name after it ended: ExecutionAlreadyExists", e.response["Error"]["Code"] == "ExecutionAlreadyExists", e.response["Error"]["Code"])
    unnamed = sfn.start_execution(stateMachineArn=sm, input=json.dumps({"db": "x", "mode": "healthy", "pause": 0, "approval_timeout": 5}))["executionArn"]
    check("StartExecution without a name gets a generated name", not unnamed.endswith(":None"), unnamed)
    finish(unnamed, 10)

    # 3. SendTaskFailure(error="Rejected") goes to the Catch, Catch ResultPath $.error, Fail state.
    arn = start("reject")
    token = wait_for(lambda: tokens.get("reject"), 30)
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="not now")
    d = finish(arn)
    check("SendTaskFailure(Rejected) -> Catch -> Fail", d["status"] == "FAILED" and d.get("error") == "FailoverRejected", (d["status"], d.get("error"), d.get("cause")))
    entered = [json.loads(e["stateEnteredEventDetails"]["input"]) for e in history(arn) if e["type"] == "FailStateEntered"]
    check("Catch ResultPath $.error", bool(entered) and entered[0].get("error") == {"Error": "Rejected", "Cause": "not now"}, entered[0].get("error") if entered else None)

    # 4. Callback timeout from TimeoutSecondsPath.
    t0 = time.monotonic()
    arn = start("timeout", approval_timeout=2)
    d = finish(arn, 30)
    took = time.monotonic() - t0
    out = output(d) or {}
    check("TimeoutSecondsPath=2 -> States.Timeout caught", d["status"] == "SUCCEEDED" and out.get("error", {}).get("Error") == "States.Timeout", (d["status"], out.get("error"), out.get("outcome")))
    check("timeout took ~ check + wait + 2 s", 3 <= took < 10, f"{took:.1f}s")
    late = tokens.get("timeout")
    if late:
        try:
            sfn.send_task_success(taskToken=late, output="{}")
            check("SendTaskSuccess after the timeout is refused", False, "accepted")
        except ClientError as e:
            check("SendTaskSuccess after the timeout is refused", True, e.response["Error"]["Code"])

    # 5. NonRetryable (200 + X-Amz-Function-Error) is caught, not retried.
    arn = start("fatal", mode="fatal")
    d = finish(arn)
    out = output(d) or {}
    n = sum(1 for name, p in calls if p.get("run") == "fatal")
    check("NonRetryable caught, no retry", d["status"] == "SUCCEEDED" and out.get("error", {}).get("Error") == "NonRetryable" and n == 1, (d["status"], out.get("error"), f"{n} call(s)"))

    # 6. Choice on a boolean from the previous result -> Succeed.
    arn = start("healthy", mode="healthy")
    d = finish(arn)
    states = [e["stateExitedEventDetails"]["name"] for e in history(arn) if "stateExitedEventDetails" in e]
    check("Choice on $.check.healthy -> Succeed", d["status"] == "SUCCEEDED" and states[-1:] == ["AlreadyHealthy"], (d["status"], states))


if __name__ == "__main__":
    main()
