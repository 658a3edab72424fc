"""The wiring: moto's own server app behind the emulator's control endpoints, fault injection,
outages, throttling and every service's rules, under a clock tests can move."""

import json
import os
import socket
import sys
from datetime import datetime, timezone
from urllib.parse import parse_qs

import freezegun
from werkzeug.serving import make_server

from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import DomainDispatcherApplication, create_backend_app

from . import cloudwatch, rds, sns
from .rdsdata import DataApi, is_rds_data
from .arc import Arc
from .awslambda import FUNCTION_URL, STUB_FUNCTIONS, forward_lambda_invokes, function_url_iam, register_functions
from .common import CALLER, CREDENTIAL_REGION, Refused, caller_account, error_response, json_answer, json_body, json_error, peek_body
from .dynamodb import TransactTokens
from .events import events_say_whose_they_are
from .faults import Faults, operation
from .iam import simulate_principal_policy
from .kms import KEY_ID_OR_ARN, key_arn_as_key_id
from .organizations import organizations_member_read_refused
from .outage import Outage
from .rds import (
    RESTORES,
    WITHDRAWN_CLASSES,
    account_attributes,
    data_api_on_aurora,
    database_control,
    http_endpoint,
    global_clusters_know_their_writer,
    orderable_options,
    rds_across_accounts,
    rds_fleet,
    real_databases,
    restored_clusters_take_a_while,
    restores_take_rds_defaults,
    switch_global_cluster,
    cross_region_replicas_take_the_default_parameter_group,
    snapshots,
    subnet_group,
)
from .route53 import CHANGE_PATH, HEALTH_CHECK_PATH, RRSET_PATH, pending_change_xml, route53_change_rules
from .s3 import compliance_retention_refused, s3_error
from .sfn import execution_name_refused
from .ssm import ssm_value_refused
from .throttle import Throttle

# The rules of the API references that moto skips, in the order they judge a query-protocol call.
STRICT_RULES = rds.STRICT_RULES + sns.STRICT_RULES


def main() -> None:
    rds_across_accounts()
    real_databases()
    data_api_on_aurora()
    global_clusters_know_their_writer()
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
    transact_idempotently = TransactTokens(app)
    data_api = DataApi()

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
        if (path or "").startswith("/_lifeboat/db/"):
            return database_control(environ, start_response)
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
        if (path or "").startswith(cloudwatch.PREFIX):
            m = CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
            region = m.group(1) if m else "us-east-1"
            return cloudwatch.answer(path, peek_body(environ), region, caller_account(environ), start_response)
        if is_rds_data(environ):
            return data_api.answer(environ, json_body(environ), start_response)
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
            if action in ("EnableHttpEndpoint", "DisableHttpEndpoint"):
                return http_endpoint(action, form, region, start_response)
            if action == "SimulatePrincipalPolicy":
                return simulate_principal_policy(form, start_response)
            if action in ("SwitchoverGlobalCluster", "FailoverGlobalCluster"):
                return switch_global_cluster(action, form, set(outage.stats()["regions"]), start_response)
            if action == "DescribeOrderableDBInstanceOptions":
                return orderable_options(form, region, start_response)
            if action == "DescribeAccountAttributes" and "/rds/" in environ.get("HTTP_AUTHORIZATION", ""):
                return account_attributes(region, start_response)
            if action == "CreateDBInstanceReadReplica":
                with cross_region_replicas_take_the_default_parameter_group(form, region):
                    return [b"".join(app(environ, start_response))]
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
        check = HEALTH_CHECK_PATH.match(path or "")
        if check and environ.get("REQUEST_METHOD") == "GET":
            answered = {}

            def held(status, headers, exc_info=None):
                answered["status"], answered["headers"] = status, headers
                return lambda data: None

            body = b"".join(app(environ, held))
            body = arc.with_routing_control(check.group(1), body.decode("utf-8", "replace")).encode()
            headers = [(k, v) for k, v in answered["headers"] if k.lower() != "content-length"]
            start_response(answered["status"], headers + [("Content-Length", str(len(body)))])
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

    server = make_server("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0, with_clock, threaded=True)
    # moto's Step Functions interpreter calls Lambda (and other services) at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(server.server_port)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()
