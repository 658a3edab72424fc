"""Start moto's AWS emulator on a free loopback port, with a clock tests can move.

Prints `PORT <n>` once it listens. Runs moto in-process under freezegun so retention tests can
seed snapshots "months ago": POST /_lifeboat/clock {"now": "<ISO-8601>"} moves the emulator's
clock, which then ticks on in real time. moto has no fault injection, so POST /_lifeboat/faults
{"faults": [{"action": "DeleteDBSnapshot", "target": "<identifier>", "code": "Throttling"}]} makes
matching RDS query calls answer with that AWS error (status 400) until the faults are replaced.
Everything else is moto's own server app, unchanged.
"""

import io
import json
import sys
from urllib.parse import parse_qs
from datetime import datetime, timezone

import freezegun
from werkzeug.serving import make_server

from moto.server import DomainDispatcherApplication, create_backend_app


def main() -> None:
    clock = freezegun.freeze_time(datetime.now(timezone.utc), tick=True)
    ticker = clock.start()
    app = DomainDispatcherApplication(create_backend_app)
    faults = []

    def injected(environ):
        """The fault matching this RDS query request, if any; leaves the body readable for moto."""
        if not faults or environ.get("REQUEST_METHOD") != "POST":
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        for fault in faults:
            if form.get("Action") == fault["action"] and fault["target"] in form.values():
                return fault
        return None

    def with_clock(environ, start_response):
        if environ.get("PATH_INFO") == "/_lifeboat/clock":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            ticker.move_to(datetime.fromisoformat(body["now"].replace("Z", "+00:00")))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"now": datetime.now(timezone.utc).isoformat()}).encode()]
        if environ.get("PATH_INFO") == "/_lifeboat/faults":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            faults[:] = json.loads(environ["wsgi.input"].read(length) or b"{}").get("faults", [])
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"faults": faults}).encode()]
        fault = injected(environ)
        if fault:
            code = fault["code"]
            xml = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>injected by the test: {code}</Message></Error>"
                "<RequestId>lifeboat-fault</RequestId></ErrorResponse>"
            )
            start_response("400 Bad Request", [("Content-Type", "text/xml")])
            return [xml.encode()]
        return app(environ, start_response)

    server = make_server("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0, with_clock, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
