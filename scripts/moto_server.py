"""Start moto's AWS emulator on a free loopback port, with a clock tests can move.

Prints `PORT <n>` once it listens. Runs moto in-process under freezegun so retention tests can
seed snapshots "months ago": POST /_lifeboat/clock {"now": "<ISO-8601>"} moves the emulator's
clock, which then ticks on in real time. Everything else is moto's own server app, unchanged.
"""

import json
import sys
from datetime import datetime, timezone

import freezegun
from werkzeug.serving import make_server

from moto.server import DomainDispatcherApplication, create_backend_app


def main() -> None:
    clock = freezegun.freeze_time(datetime.now(timezone.utc), tick=True)
    ticker = clock.start()
    app = DomainDispatcherApplication(create_backend_app)

    def with_clock(environ, start_response):
        if environ.get("PATH_INFO") == "/_lifeboat/clock":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            ticker.move_to(datetime.fromisoformat(body["now"].replace("Z", "+00:00")))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"now": datetime.now(timezone.utc).isoformat()}).encode()]
        return app(environ, start_response)

    server = make_server("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0, with_clock, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
