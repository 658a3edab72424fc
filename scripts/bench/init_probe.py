#!/usr/bin/env python3
"""Where a function's init goes, apart from the emulator: each release binary started under a
minimal Lambda Runtime API (this script's own socket: init ends at the first `invocation/next`),
its config and active sides read from a stand-in SSM endpoint that answers after DELAY ms (0: as
fast as loopback; 10: about an in-region AWS call), with the SDK's native root store as the machine
has it, and with the bundle file alone (SSL_CERT_FILE, an empty SSL_CERT_DIR). Used for the
"Where the init goes" table in BENCHMARKS.md; scripts/bench.sh's BENCH_ONLY=init measures against
moto itself.

    python3 scripts/bench/init_probe.py DELAY_MS RUNS target/release/rpo-monitor [...]
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = open(os.path.join(ROOT, "examples", "lifeboat.yaml")).read()


def stand_in_ssm(delay_ms):
    class Ssm(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(delay_ms / 1000)
            if self.headers.get("x-amz-target", "").endswith(".GetParameter"):
                body = {"Parameter": {"Name": "/lifeboat/config", "Type": "String", "Value": CONFIG, "Version": 1}}
            else:
                body = {"Parameters": []}
            b = json.dumps(body).encode()
            # One write: headers and body apart would meet the client's delayed ACK (40 ms).
            head = f"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {len(b)}\r\n\r\n"
            self.wfile.write(head.encode() + b)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ssm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def once(binary, endpoint, extra):
    runtime = socket.socket()
    runtime.bind(("127.0.0.1", 0))
    runtime.listen(1)
    env = {
        "PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.getsockname()[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": endpoint, "LIFEBOAT_INCIDENTS_TABLE": "t",
        "LIFEBOAT_APPROVAL_SECRET_PARAM": "/p", "LIFEBOAT_FAILOVER_STATE_MACHINE_ARN": "x",
        "LIFEBOAT_DRILL_STATE_MACHINE_ARN": "x", "LIFEBOAT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
        "LIFEBOAT_RECOVERS": "all", **extra,
    }
    started = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runtime.settimeout(30)
    conn, _ = runtime.accept()
    init_ms = (time.perf_counter() - started) * 1000
    with open(f"/proc/{p.pid}/status") as status:
        hwm = next(int(l.split()[1]) for l in status if l.startswith("VmHWM"))
    p.kill()
    p.wait()
    conn.close()
    runtime.close()
    return init_ms, hwm / 1024


def main():
    delay, runs, binaries = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    endpoint = stand_in_ssm(delay)
    empty = tempfile.mkdtemp()
    stores = [("native roots", {}), ("bundle file only", {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "SSL_CERT_DIR": empty})]
    for binary in binaries:
        for name, extra in stores:
            got = [once(binary, endpoint, extra) for _ in range(runs)]
            print(f"{binary} (SSM {delay:g} ms, {name}): init median {statistics.median(g[0] for g in got):.1f} ms, "
                  f"RSS at init median {statistics.median(g[1] for g in got):.1f} MB")


if __name__ == "__main__":
    main()
