"""DynamoDB: TransactWriteItems idempotent by its ClientRequestToken."""

import json
import threading
import time

from .common import json_error, peek_body


class TransactTokens:
    # "Providing a ClientRequestToken makes the call to TransactWriteItems idempotent, meaning
    # that multiple identical calls have the same effect as one single call. [...] A client
    # request token is valid for 10 minutes after the first request that uses it is completed.
    # [...] If you submit a request with the same client token but a change in other parameters
    # within the 10-minute idempotency window, DynamoDB returns an IdempotentParameterMismatch
    # exception." (DynamoDB API Reference, TransactWriteItems.) moto ignores the token, so an SDK
    # retry of a transaction that went through fails its own conditions there, not on AWS.

    def __init__(self, app):
        self.app = app
        self.tokens, self.running = {}, set()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        app, tokens, running, tokens_lock = self.app, self.tokens, self.running, self.lock
        raw = peek_body(environ)
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return app(environ, start_response)
        token = request.pop("ClientRequestToken", None)
        if not token:
            return app(environ, start_response)
        params = json.dumps(request, sort_keys=True)
        now = time.monotonic()
        with tokens_lock:
            if token in running:
                # "TransactionInProgressException: The transaction with the given request token
                # is already in progress."
                return json_error(start_response, "TransactionInProgressException", "already in progress")
            seen = tokens.get(token)
            if seen and now - seen[0] < 600:
                if seen[1] != params:
                    return json_error(start_response, "IdempotentParameterMismatchException", "the token was used with other parameters")
                start_response(seen[2], seen[3])
                return [seen[4]]
            running.add(token)
        answered = {}

        def keep(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = b""
        try:
            body = b"".join(app(environ, keep))
        finally:
            with tokens_lock:
                running.discard(token)
                if body and answered.get("status", "").startswith("200"):
                    tokens[token] = (time.monotonic(), params, answered["status"], answered["headers"], body)
        return [body]
