"""pam_exec's program for the emulator's RDS IAM logins (rdsiam.py): the token arrives on stdin
(expose_authtok), the user in PAM_USER; the server's working directory is its datadir,
<state>/servers/<n>-<engine>/data, whose emulator answers on <state>/rds-iam.sock. Exit 0 only
when it says "ok". Runs as the server's user under Debian's /usr/bin/python3: the standard
library only."""

import json
import os
import socket
import sys


def main() -> int:
    token = sys.stdin.buffer.read().rstrip(b"\0").decode("utf-8", "replace")
    datadir = os.getcwd()
    state = os.path.dirname(os.path.dirname(os.path.dirname(datadir)))
    ask = json.dumps({"dir": datadir, "user": os.environ.get("PAM_USER", ""), "token": token}) + "\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(os.path.join(state, "rds-iam.sock"))
            s.sendall(ask.encode())
            answer = json.loads(s.makefile("rb").readline())
    except (OSError, ValueError) as e:
        print(f"rds-iam: no answer from the emulator: {e}", file=sys.stderr)
        return 1
    return 0 if answer.get("ok") is True else 1


if __name__ == "__main__":
    sys.exit(main())
