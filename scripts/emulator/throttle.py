"""RDS's request throttling, a token bucket per account, region, service and API family."""

import threading

import freezegun

from .common import ACCESS_KEY, CREDENTIAL_SCOPE, caller_account


class Throttle:
    """RDS's request throttling, which moto lacks, switched on by the test. "Amazon RDS throttles API
    requests for each AWS account in each AWS Region", with "a token bucket"; "By default, you can
    make up to 300 requests in a burst and a sustained 12 requests per second", beyond which "the
    Amazon RDS API issues an error like the following one. ClientError: An error occurred
    (ThrottlingException) when calling the API_name operation: Rate exceeded." (RDS User Guide,
    Request throttling for the Amazon RDS API); on the wire the query-protocol code is `Throttling`
    ("An error occurred (Throttling) when calling the DescribeDBInstances operation ... Rate
    exceeded", aws-cli#8604), HTTP 400, and JSON-protocol services send ThrottlingException.

    POST /_lifeboat/throttle {"rate"? (tokens/s, 12), "burst"? (bucket size, 300), "services"?
    (signing names as in the credential scope: ["rds"]), "caller"? (an access key id: only calls
    signed with it)} gives each (account, signing region, service, API family) a full bucket; {}
    or {"rate": 0} turns it off. The families are ours: the guide names one limit and doesn't say
    whether reads and writes share it, so reads (Describe*, List*, Get*, Download*) and the rest
    each get a bucket of that size, and a run's listings don't starve its deletes, nor the
    reverse. GET answers {"throttled": {"<region>:<service>:<Operation>": n}, "calls": {...}}
    since the last POST: every AWS call no injected fault answered (`Faults` comes first), throttled
    or not, whoever signed it. Real time: the emulator's clock is moved by tests, a bucket's refill
    is not."""

    READS = ("Describe", "List", "Get", "Download")

    def __init__(self):
        self.lock = threading.Lock()
        self.set({})

    def set(self, body):
        with self.lock:
            self.rate = float(body.get("rate", 12)) if body else 0.0
            self.burst = float(body.get("burst", 300))
            self.services = set(body.get("services", ["rds"]))
            self.caller = body.get("caller")
            self.buckets, self.calls, self.throttled = {}, {}, {}

    def stats(self):
        with self.lock:
            return {"throttled": dict(self.throttled), "calls": dict(self.calls)}

    def refuse(self, environ, operation: str) -> bool:
        """Count the call; True when its bucket is empty."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = CREDENTIAL_SCOPE.search(auth)
        if not scope:
            return False
        region, service = scope.groups()
        key = f"{region}:{service}:{operation}"
        signer = ACCESS_KEY.search(auth)
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            if self.rate <= 0 or service not in self.services:
                return False
            if self.caller is not None and not (signer and signer.group(1) == self.caller):
                return False
            family = "read" if operation.startswith(self.READS) else "write"
            bucket = (caller_account(environ), region, service, family)
            now = freezegun.api.real_monotonic()
            tokens, then = self.buckets.get(bucket, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self.buckets[bucket] = (tokens - 1, now)
                return False
            self.buckets[bucket] = (tokens, now)
            self.throttled[key] = self.throttled.get(key, 0) + 1
            return True
