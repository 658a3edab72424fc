"""A region (or Route 53's control plane) down."""

import threading

from .common import ACCESS_KEY, CREDENTIAL_SCOPE


class Outage:
    """A region down, as on the day Lifeboat exists for: POST /_lifeboat/outage {"regions":
    ["us-east-1"], "route53": false} and from then every call signed for those regions (RDS, SSM,
    DynamoDB, SNS, Step Functions, Lambda, CloudWatch...) gets its connection reset before the
    service sees it, as an unreachable regional endpoint answers; "route53": true does the same to
    Route 53's control plane (ChangeResourceRecordSets, GetChange, ListResourceRecordSets: all
    signed for us-east-1, its only region), which is down or not on its own. The same POST resets
    the counts; GET /_lifeboat/outage answers every call seen since, per signing region and access
    key, refused or not: {"calls": {"us-east-1": {"lifeboat-functions": 3}}, "refused": ...}."""

    def __init__(self):
        self.lock = threading.Lock()
        self.set({})

    def set(self, body):
        with self.lock:
            self.regions = set(body.get("regions", []))
            self.route53 = bool(body.get("route53", False))
            self.calls, self.refused = {}, {}

    def stats(self):
        with self.lock:
            return {"regions": sorted(self.regions), "route53": self.route53, "calls": self.calls, "refused": self.refused}

    def refuse(self, environ):
        """Count the call; True when its endpoint is down."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = CREDENTIAL_SCOPE.search(auth)
        if not scope:
            return False
        region, service = scope.group(1), scope.group(2)
        key = ACCESS_KEY.search(auth)
        caller = key.group(1) if key else "?"
        with self.lock:
            per = self.calls.setdefault(region, {})
            per[caller] = per.get(caller, 0) + 1
            down = self.route53 if service == "route53" else region in self.regions
            if down:
                per = self.refused.setdefault(region, {})
                per[caller] = per.get(caller, 0) + 1
            return down
