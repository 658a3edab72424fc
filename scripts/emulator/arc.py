"""Route 53 ARC (routing controls and the DNS answers they steer), which moto lacks."""

import re
import threading

from moto.core import DEFAULT_ACCOUNT_ID


class Arc:
    """Route 53 ARC's routing control cluster (route53-recovery-cluster), which moto lacks, and the
    part of Route 53's data plane that reads it. POST /_lifeboat/arc {"controls": [{"arn", "name",
    "state": "On" | "Off"}], "at_least_one_on": [[arn, ...]]} stands in for the control-config API
    people set a cluster up with (Lifeboat never calls it); the cluster's JSON API (X-Amz-Target
    ToggleCustomerAPI.*) then answers at any URL, signed for any region, so a test's config can
    name five "regional endpoints" and `Outage` takes some down. Rules from the Routing Control
    API Reference: a state is `On` or `Off` (ValidationException); an unknown control is
    ResourceNotFoundException; an update that would break a safety rule is refused whole
    (ConflictException), so "at least one On" turns Off the primary's control only in the same
    UpdateRoutingControlStates that turns the other On. GET /_lifeboat/route53/resolve?name=N
    answers N as Route 53's name servers would: a failover pair answers its PRIMARY while the
    PRIMARY's health check is healthy, else its SECONDARY; a RECOVERY_CONTROL health check is
    healthy while its routing control is On."""

    def __init__(self):
        self.lock = threading.Lock()
        self.controls, self.rules, self.health_checks = {}, [], {}

    def seed(self, body):
        with self.lock:
            for c in body.get("controls", []):
                self.controls[c["arn"]] = {"name": c.get("name", c["arn"].rsplit("/", 1)[-1]), "state": c["state"]}
            self.rules = body.get("at_least_one_on", [])
            return {"controls": self.controls, "at_least_one_on": self.rules}

    def answer(self, operation, request):
        """(status, body) of one cluster API call."""

        def err(code, message, status=400):
            return status, {"__type": code, "message": message}

        with self.lock:
            if operation == "GetRoutingControlState":
                arn = request.get("RoutingControlArn")
                if not arn:
                    return err("ValidationException", "RoutingControlArn is required")
                c = self.controls.get(arn)
                if c is None:
                    return err("ResourceNotFoundException", f"routing control {arn} not found", 404)
                return 200, {"RoutingControlArn": arn, "RoutingControlState": c["state"], "RoutingControlName": c["name"]}
            if operation in ("UpdateRoutingControlState", "UpdateRoutingControlStates"):
                entries = request.get("UpdateRoutingControlStateEntries") if operation.endswith("States") else [request]
                if not entries:
                    return err("ValidationException", "UpdateRoutingControlStateEntries is required")
                wanted = {}
                for e in entries:
                    arn, state = e.get("RoutingControlArn"), e.get("RoutingControlState")
                    if state not in ("On", "Off"):
                        return err("ValidationException", f"RoutingControlState {state!r} is not On or Off")
                    if arn not in self.controls:
                        return err("ResourceNotFoundException", f"routing control {arn} not found", 404)
                    wanted[arn] = state
                after = {arn: wanted.get(arn, c["state"]) for arn, c in self.controls.items()}
                overridden = set(request.get("SafetyRulesToOverride") or [])
                for i, rule in enumerate(self.rules):
                    if f"rule-{i}" not in overridden and not any(after.get(arn) == "On" for arn in rule):
                        return err("ConflictException", f"safety rule rule-{i} (at least one On of {rule}) would be broken")
                for arn, state in wanted.items():
                    self.controls[arn]["state"] = state
                return 200, {}
            return err("ValidationException", f"{operation} is not emulated")

    def remember_health_check(self, request_body: str, response_body: str):
        arn = re.search(r"<RoutingControlArn>(.*?)</RoutingControlArn>", request_body, re.S)
        hc = re.search(r"<HealthCheck>.*?<Id>(.*?)</Id>", response_body, re.S)
        if arn and hc:
            with self.lock:
                self.health_checks[hc.group(1)] = arn.group(1)

    def with_routing_control(self, health_check_id: str, response_body: str) -> str:
        """GetHealthCheck: a RECOVERY_CONTROL check's HealthCheckConfig carries its
        RoutingControlArn (Route 53 API reference, HealthCheckConfig: "RoutingControlArn: The
        Amazon Resource Name (ARN) for the Route 53 Application Recovery Controller routing
        control"); moto forgets it. The response is moto's, with the ARN it was created with put
        back."""
        with self.lock:
            arn = self.health_checks.get(health_check_id)
        if not arn or "<RoutingControlArn>" in response_body:
            return response_body
        return response_body.replace("</HealthCheckConfig>", f"<RoutingControlArn>{arn}</RoutingControlArn></HealthCheckConfig>", 1)

    def healthy(self, health_check_id) -> bool:
        with self.lock:
            arn = self.health_checks.get(health_check_id)
            return arn is None or self.controls.get(arn, {}).get("state") == "On"

    def resolve(self, name: str):
        from moto.route53.models import route53_backends

        wanted = name.rstrip(".").lower()
        sets = [
            r
            for z in route53_backends[DEFAULT_ACCOUNT_ID]["aws"].zones.values()
            for r in z.rrsets
            if r.name.rstrip(".").lower() == wanted
        ]

        def value(r):
            first = (r.records or [None])[0]
            return first.get("Value") if isinstance(first, dict) else first

        primary = next((r for r in sets if r.failover == "PRIMARY"), None)
        secondary = next((r for r in sets if r.failover == "SECONDARY"), None)
        if primary is not None:
            if not primary.health_check_id or self.healthy(primary.health_check_id):
                return value(primary)
            return value(secondary) if secondary is not None else None
        return value(sets[0]) if sets else None
