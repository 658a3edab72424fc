"""Real PostgreSQL and MariaDB servers behind the emulator's RDS instances and clusters (issue 28's
test bed): moto's RDS is metadata only, so a restore, a promotion or a point-in-time recovery had
no data to check. Here a resource made real (`attach`, or born of a real one: a restore of a
snapshot that carries a dump, a point-in-time restore, a read replica) is a server on loopback
whose database holds its source's data as of the recovery point. The RDS hooks that decide which
resource gets what are in `rds` (`real_databases`); this module runs the servers and their dumps.

Servers: Debian's PostgreSQL (postgres, aurora-postgresql) and MariaDB (mysql, mariadb,
aurora-mysql), whatever engine version RDS says. Each engine's datadir is made once per emulator
(initdb / mariadb-install-db, on first use) into a template; every server is a copy of the template
on its own free port of 127.0.0.1, fsync off. Connections over TCP need TLS (PostgreSQL: ssl=on and
pg_hba `hostssl` lines only, scram-sha-256, as RDS's rds.force_ssl=1; MariaDB:
--require-secure-transport=ON) with a certificate for 127.0.0.1 and localhost signed by the
emulator's own CA (`ca.pem` in the state dir). The emulator's own tools reach each server over its
Unix socket, in a directory only the server's user (and root) can enter.

Data: a snapshot of a real resource is a logical dump taken at that moment (pg_dumpall /
mariadb-dump --all-databases --single-transaction, logins included, so a restore has the same
users and passwords); a copy carries its source's dump. Every real resource keeps timed dumps
("checkpoints", stamped with the emulator's clock, the one moto stamps snapshots and restorable
times with and tests move): one when it became real, one at each snapshot, one on demand; a
point-in-time restore loads the newest checkpoint at or before its restore time.

State: a directory made with mkdtemp under $LIFEBOAT_DB_DIR (default: the system's temp dir),
removed when the emulator exits. A watchdog process, told every server's pid through a pipe
only the emulator holds, stops the servers and removes the directory when that pipe closes: at
the emulator's exit, whatever ended it (a test's SIGKILL included).

Running as root (CI): postgres refuses root, so its programs run as the `postgres` user (setpriv)
and mariadbd with --user=mysql, each datadir owned by its server's user.
"""

import glob
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import freezegun

from . import rdsiam

# RDS engine -> the server that stands in for it.
ENGINES = {
    "postgres": "postgres",
    "aurora-postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "aurora-mysql": "mysql",
    "aurora": "mysql",
}
HOST = "127.0.0.1"
READY_SECONDS = 60


def engine_of(rds_engine: str | None) -> str | None:
    return ENGINES.get((rds_engine or "").lower())


class DbError(Exception):
    """A control call refused (status 4xx) or a server that failed (500)."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def now() -> datetime:
    """The emulator's clock (freezegun's, as moto's times and the tests' RestoreTime are)."""
    return datetime.now(timezone.utc)


def real_seconds() -> float:
    """Real time for waits: the emulator's clock jumps when a test moves it."""
    return freezegun.api.real_monotonic()


def aware(when) -> datetime:
    """A restore time as moto hands it (datetime, naive UTC or aware; or ISO-8601 text)."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


@dataclass
class Dump:
    """A logical dump of one server at one moment, and the login its admin had then."""

    path: str
    engine: str
    admin_user: str
    admin_password: str
    taken_at: datetime


@dataclass
class Server:
    n: int
    engine: str
    port: int
    dir: str
    admin_user: str
    admin_password: str
    proc: subprocess.Popen | None = None
    key: tuple | None = None  # (account, region, "instance" | "cluster", identifier)
    checkpoints: list = field(default_factory=list)  # [(time, Dump)], in the order taken
    promoted: bool = False
    replica_of: tuple | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def data(self) -> str:
        return os.path.join(self.dir, "data")

    @property
    def run(self) -> str:
        return os.path.join(self.dir, "run")

    def checkpoint_at(self, when: datetime | None) -> Dump | None:
        """The newest checkpoint at or before `when` (None: the newest of all). Before the
        first one (the moment it became real, holding nothing but its admin login) the database
        held no more than that, so the first one answers."""
        if not self.checkpoints:
            return None
        ordered = sorted(enumerate(self.checkpoints), key=lambda c: (c[1][0], c[0]))
        if when is None:
            return ordered[-1][1][1]
        before = [c for c in ordered if c[1][0] <= when]
        return (before or ordered[:1])[-1][1][1]

    def describe(self) -> dict:
        account, region, kind, ident = self.key or (None, None, None, None)
        return {
            "account": account,
            "region": region,
            "kind": kind,
            "id": ident,
            "engine": self.engine,
            "host": HOST,
            "port": self.port,
            "pid": self.proc.pid if self.proc else None,
            "admin_user": self.admin_user,
            "promoted": self.promoted,
            "replica_of": list(self.replica_of) if self.replica_of else None,
            "checkpoints": [t.isoformat() for t, _ in self.checkpoints],
            "dir": self.dir,
        }


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise DbError("ServerMissing", f"PostgreSQL's {name} is not installed: run scripts/setup.sh", 500)
    return found[-1]


def mariadb_bin(name: str) -> str:
    for d in ("/usr/sbin", "/usr/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    found = shutil.which(name)
    if not found:
        raise DbError("ServerMissing", f"MariaDB's {name} is not installed: run scripts/setup.sh", 500)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def sql_literal(text: str) -> str:
    """A PostgreSQL string literal (standard_conforming_strings: a backslash is itself)."""
    return "'" + text.replace("'", "''") + "'"


def pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def my_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def my_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# The watchdog: reads "pid <pid> <signal>" / "gone <pid>" lines; at EOF (the emulator is gone,
# however it ended) signals every server still listed, waits, kills what is left, removes the
# state directory.
WATCHDOG = r"""
import os, shutil, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
state, pids = sys.argv[1], {}
for line in sys.stdin:
    word, _, rest = line.strip().partition(" ")
    if word == "pid":
        pid, sig = rest.split()
        pids[int(pid)] = int(sig)
    elif word == "gone":
        pids.pop(int(rest), None)
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
for pid, sig in pids.items():
    try:
        os.kill(pid, sig)
    except OSError:
        pass
deadline = time.monotonic() + 10
while any(alive(p) for p in pids) and time.monotonic() < deadline:
    time.sleep(0.05)
for pid in pids:
    if alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
time.sleep(0.2)
shutil.rmtree(state, ignore_errors=True)
"""


class Databases:
    """The servers of one emulator, by the RDS resource they stand behind."""

    def __init__(self):
        self.lock = threading.RLock()
        self.templates_lock = {"postgres": threading.Lock(), "mysql": threading.Lock()}
        self.state = None
        self.watchdog_pipe = None
        self.templates = {}
        self.servers = {}  # key -> Server
        self.count = 0
        self.root = os.geteuid() == 0
        # Called with the state directory once it exists (rds.py: the IAM token checker's socket).
        self.on_state = None

    # -- the state directory, its watchdog, TLS -------------------------------------------------

    def state_dir(self) -> str:
        with self.lock:
            if self.state is None:
                parent = os.environ.get("LIFEBOAT_DB_DIR") or None
                if parent:
                    os.makedirs(parent, exist_ok=True)
                state = tempfile.mkdtemp(prefix="lifeboat-db-", dir=parent)
                # The servers' users must pass through it to their own datadirs.
                os.chmod(state, 0o711)
                read, write = os.pipe()
                subprocess.Popen(
                    [sys.executable, "-c", WATCHDOG, state],
                    stdin=read,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                os.close(read)
                self.watchdog_pipe = os.fdopen(write, "w", buffering=1)
                for sub in ("servers", "templates", "dumps", "tls"):
                    os.makedirs(os.path.join(state, sub))
                    os.chmod(os.path.join(state, sub), 0o711)
                self.state = state
                self.make_tls()
                if self.on_state:
                    self.on_state(state)
            return self.state

    def tell_watchdog(self, line: str):
        with self.lock:
            try:
                self.watchdog_pipe.write(line + "\n")
            except (OSError, ValueError):
                pass

    def ca_path(self) -> str:
        return os.path.join(self.state_dir(), "ca.pem")

    def make_tls(self):
        """A CA and a server certificate for 127.0.0.1, ::1 and localhost (subjectAltName: rustls
        reads no CN), valid by the real clock: clients check it against theirs, not the
        emulator's, which tests move by months."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        # datetime.datetime as it is now (freezegun's class while the clock is faked: cryptography
        # takes no other), at the real time.
        import datetime as dt

        start = dt.datetime.fromtimestamp(freezegun.api.real_time(), timezone.utc) - timedelta(days=1)
        end = start + timedelta(days=3650)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lifeboat emulator CA")])
        usage = dict(content_commitment=False, data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False)
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=True, crl_sign=True, **usage), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False, crl_sign=False, **usage), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        tls = os.path.join(self.state, "tls")
        pem = serialization.Encoding.PEM
        with open(os.path.join(self.state, "ca.pem"), "wb") as f:
            f.write(ca.public_bytes(pem))
        with open(os.path.join(tls, "server.crt"), "wb") as f:
            f.write(cert.public_bytes(pem))
        key_pem = key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
        # Each server reads its key as its own user, and PostgreSQL refuses a key others can read.
        for engine, user in (("postgres", "postgres"), ("mysql", "mysql")):
            path = os.path.join(tls, f"{engine}.key")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(key_pem)
            self.give(path, user)

    # -- running things as the servers' users ---------------------------------------------------

    def give(self, path: str, user: str):
        """chown -R path to the server's user when running as root (else it is ours already)."""
        if not self.root:
            return
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(path):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in files:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        if os.path.isfile(path):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def as_postgres(self, argv: list) -> list:
        if not self.root:
            return argv
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + argv

    def mysql_user(self) -> list:
        return ["--user=mysql"] if self.root else []

    def run(self, argv, what: str, stdin=None, log: str | None = None):
        """Run a tool to its end; its output goes to `log` (or is kept for the error)."""
        out = open(log, "ab") if log else subprocess.PIPE
        try:
            done = subprocess.run(argv, stdin=stdin, stdout=out, stderr=subprocess.STDOUT, check=False)
        finally:
            if log:
                out.close()
        if done.returncode != 0:
            detail = done.stdout.decode("utf-8", "replace")[-2000:] if done.stdout else f"see {log}"
            raise DbError("ServerFailed", f"{what} failed ({done.returncode}): {detail}", 500)
        return done

    # -- templates ------------------------------------------------------------------------------

    def template(self, engine: str) -> str:
        """The engine's template datadir, made on first use."""
        with self.templates_lock[engine]:
            if engine in self.templates:
                return self.templates[engine]
            state = self.state_dir()
            path = os.path.join(state, "templates", engine)
            os.makedirs(path)
            log = os.path.join(state, "templates", f"{engine}.log")
            if engine == "postgres":
                self.give(path, "postgres")
                os.chmod(path, 0o700)
                self.run(
                    self.as_postgres(
                        [postgres_bin("initdb"), "-D", path, "-U", "postgres", "-E", "UTF8", "--no-locale",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"]
                    ),
                    "initdb",
                    log=log,
                )
                tls = os.path.join(state, "tls")
                with open(os.path.join(path, "postgresql.conf"), "a") as f:
                    f.write(
                        "\n# Lifeboat's emulator: TLS required, loopback only, speed over durability.\n"
                        f"listen_addresses = '{HOST}'\n"
                        "ssl = on\n"
                        f"ssl_cert_file = '{tls}/server.crt'\n"
                        f"ssl_key_file = '{tls}/postgres.key'\n"
                        "ssl_min_protocol_version = 'TLSv1.2'\n"
                        "password_encryption = 'scram-sha-256'\n"
                        "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                        "shared_buffers = '16MB'\nmax_connections = 40\n"
                        "timezone = 'UTC'\nlog_timezone = 'UTC'\n"
                    )
                with open(os.path.join(path, "pg_hba.conf"), "w") as f:
                    f.write(
                        "# The emulator's own tools, over the server's socket (a directory only its user and root enter).\n"
                        "local all all trust\n"
                        "# Members of rds_iam: an IAM token only, checked by the emulator (rdsiam.py), as on RDS.\n"
                        f"hostssl all +rds_iam {HOST}/32 pam pamservice={rdsiam.PAM_SERVICE}\n"
                        "# Everyone else: TLS and a password, as RDS with rds.force_ssl=1.\n"
                        f"hostssl all all {HOST}/32 scram-sha-256\n"
                        "hostssl all all ::1/128 scram-sha-256\n"
                    )
                self.give(path, "postgres")
            else:
                self.give(path, "mysql")
                self.run(
                    [mariadb_bin("mariadb-install-db"), "--no-defaults", f"--datadir={path}", *self.mysql_user(),
                     "--skip-test-db", "--auth-root-authentication-method=socket", "--skip-name-resolve",
                     "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=16M"],
                    "mariadb-install-db",
                    log=log,
                )
                self.give(path, "mysql")
            self.templates[engine] = path
            return path

    # -- one server -----------------------------------------------------------------------------

    def new_server(self, engine: str, admin_user: str, admin_password: str) -> Server:
        """A copy of the template, started on a free port."""
        template = self.template(engine)
        with self.lock:
            self.count += 1
            n = self.count
        directory = os.path.join(self.state_dir(), "servers", f"{n}-{engine}")
        os.makedirs(directory)
        os.chmod(directory, 0o711)
        server = Server(n=n, engine=engine, port=0, dir=directory, admin_user=admin_user, admin_password=admin_password)
        self.boot(server, template)
        return server

    def boot(self, server: Server, template: str, port: int | None = None):
        """Copy the template into the server's datadir and start it (on `port`, else a free one)."""
        user = "postgres" if server.engine == "postgres" else "mysql"
        shutil.rmtree(server.data, ignore_errors=True)
        shutil.rmtree(server.run, ignore_errors=True)
        subprocess.run(["cp", "-a", "--reflink=auto", template, server.data], check=True)
        os.makedirs(server.run)
        os.chmod(server.run, 0o700)
        self.give(server.run, user)
        for attempt in range(5):
            server.port = port or free_port()
            if self.start(server):
                return
            if port:
                break
        raise DbError("ServerFailed", f"{server.engine} server {server.n} did not start: see {server.dir}/server.log", 500)

    def start(self, server: Server) -> bool:
        """Start the server and wait until it answers; False if it died (its port taken)."""
        log = open(os.path.join(server.dir, "server.log"), "ab")
        tls = os.path.join(self.state, "tls")
        if server.engine == "postgres":
            argv = self.as_postgres([postgres_bin("postgres"), "-D", server.data, "-p", str(server.port), "-k", server.run])
            # Immediate shutdown: the datadir is thrown away.
            stop = signal.SIGQUIT
        else:
            argv = [
                mariadb_bin("mariadbd"), "--no-defaults", f"--datadir={server.data}", *self.mysql_user(),
                f"--port={server.port}", f"--bind-address={HOST}", f"--socket={server.run}/mysqld.sock",
                f"--pid-file={server.run}/mysqld.pid", "--skip-name-resolve",
                f"--ssl-cert={tls}/server.crt", f"--ssl-key={tls}/mysql.key", f"--ssl-ca={self.state}/ca.pem",
                "--require-secure-transport=ON", "--tls-version=TLSv1.2,TLSv1.3",
                "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M", "--innodb-flush-log-at-trx-commit=0",
                "--skip-innodb-doublewrite", "--skip-log-bin", "--performance-schema=OFF",
                "--key-buffer-size=1M", "--aria-pagecache-buffer-size=1M", "--max-connections=40",
                "--default-time-zone=+00:00", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
                # RDS IAM tokens' stand-in for AWSAuthenticationPlugin: PAM, sent in cleartext (rdsiam.py).
                "--plugin-load-add=auth_pam", "--pam-use-cleartext-plugin=ON",
            ]
            stop = signal.SIGKILL
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        server.proc = proc
        self.tell_watchdog(f"pid {proc.pid} {int(stop)}")
        deadline = real_seconds() + READY_SECONDS
        while real_seconds() < deadline:
            if proc.poll() is not None:
                self.tell_watchdog(f"gone {proc.pid}")
                server.proc = None
                return False
            if self.answers(server):
                return True
            time.sleep(0.05)
        self.kill(server)
        return False

    def answers(self, server: Server) -> bool:
        if server.engine == "postgres":
            argv = [postgres_bin("pg_isready"), "-q", "-h", server.run, "-p", str(server.port), "-U", "postgres"]
        else:
            if not os.path.exists(f"{server.run}/mysqld.sock"):
                return False
            argv = [mariadb_bin("mariadb-admin"), "--no-defaults", f"--socket={server.run}/mysqld.sock", "-u", "root", "--silent", "ping"]
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def kill(self, server: Server):
        proc, server.proc = server.proc, None
        if proc is None:
            return
        try:
            proc.send_signal(signal.SIGQUIT if server.engine == "postgres" else signal.SIGKILL)
        except OSError:
            pass
        deadline = real_seconds() + 10
        while proc.poll() is None and real_seconds() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self.tell_watchdog(f"gone {proc.pid}")

    def client(self, server: Server, database: str | None = None) -> list:
        """The engine's command-line client, as its superuser over the socket."""
        if server.engine == "postgres":
            return [postgres_bin("psql"), "-X", "-q", "-h", server.run, "-p", str(server.port), "-U", "postgres", "-d", database or "postgres"]
        return [mariadb_bin("mariadb"), "--no-defaults", f"--socket={server.run}/mysqld.sock", "-u", "root"] + ([database] if database else [])

    def sql(self, server: Server, text: str, what: str):
        argv = self.client(server)
        if server.engine == "postgres":
            argv += ["-v", "ON_ERROR_STOP=1"]
        done = subprocess.run(argv, input=text.encode(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise DbError("ServerFailed", f"{what} failed: {done.stdout.decode('utf-8', 'replace')[-2000:]}", 500)

    def create_admin(self, server: Server, database: str | None):
        """The RDS master user, as RDS makes it: on PostgreSQL a login with CREATEDB and CREATEROLE
        owning the `postgres` database (and DBName's), not a superuser; on MySQL/MariaDB a user
        with every privilege, from any host."""
        user, password = server.admin_user, server.admin_password
        if server.engine == "postgres":
            text = (
                f"CREATE ROLE {pg_ident(user)} LOGIN CREATEDB CREATEROLE PASSWORD {sql_literal(password)};\n"
                f"ALTER DATABASE postgres OWNER TO {pg_ident(user)};\n"
                # RDS's role for IAM authentication: its members log in by token only (pg_hba).
                "CREATE ROLE rds_iam NOLOGIN;\n"
            )
            if database and database != "postgres":
                text += f"CREATE DATABASE {pg_ident(database)} OWNER {pg_ident(user)};\n"
        else:
            text = (
                f"CREATE USER {my_literal(user)}@'%' IDENTIFIED BY {my_literal(password)};\n"
                f"GRANT ALL PRIVILEGES ON *.* TO {my_literal(user)}@'%' WITH GRANT OPTION;\n"
            )
            if database:
                text += f"CREATE DATABASE IF NOT EXISTS {my_ident(database)};\n"
        self.sql(server, text, "creating the admin user")

    def dump(self, server: Server) -> Dump:
        """A logical dump of everything, logins included, at this moment."""
        with self.lock:
            self.count += 1
            path = os.path.join(self.state_dir(), "dumps", f"{self.count}-{server.engine}.sql")
        if server.engine == "postgres":
            argv = [postgres_bin("pg_dumpall"), "-h", server.run, "-p", str(server.port), "-U", "postgres", "--no-sync", "-f", path]
        else:
            # The users' databases and every login (--system=users: CREATE USER IF NOT EXISTS and
            # GRANTs, with --insert-ignore), not the mysql schema's tables: the template has those,
            # and loading them again takes seconds.
            listed = subprocess.run(
                self.client(server) + ["-N", "-B", "-e", "SELECT schema_name FROM information_schema.schemata WHERE schema_name "
                                       "NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            if listed.returncode != 0:
                raise DbError("ServerFailed", f"listing server {server.n}'s databases failed: {listed.stdout.decode('utf-8', 'replace')}", 500)
            names = listed.stdout.decode().split()
            argv = [
                mariadb_bin("mariadb-dump"), "--no-defaults", f"--socket={server.run}/mysqld.sock", "-u", "root",
                "--system=users", "--insert-ignore", "--single-transaction", "--routines", "--events", "--triggers",
                "--hex-blob", f"--result-file={path}",
            ] + (["--databases", *names] if names else [])
        self.run(argv, f"dumping server {server.n}", log=os.path.join(server.dir, "tools.log"))
        return Dump(path=path, engine=server.engine, admin_user=server.admin_user, admin_password=server.admin_password, taken_at=now())

    def load(self, server: Server, dump: Dump):
        """Load a dump into a fresh server. PostgreSQL's carries CREATE ROLE postgres, which the
        template has: psql goes on past that one error (no ON_ERROR_STOP)."""
        with open(dump.path, "rb") as f:
            self.run(self.client(server), f"loading {os.path.basename(dump.path)} into server {server.n}", stdin=f, log=os.path.join(server.dir, "tools.log"))

    # -- what the RDS hooks and the control endpoints call --------------------------------------

    def bound(self, key) -> Server | None:
        with self.lock:
            return self.servers.get(key)

    def bind(self, key, server: Server):
        with self.lock:
            old = self.servers.get(key)
            server.key = key
            self.servers[key] = server
        if old is not None and old is not server:
            self.stop(old)

    def release(self, key):
        """The resource is gone: stop its server."""
        with self.lock:
            server = self.servers.pop(key, None)
        if server is not None:
            self.stop(server)

    def stop(self, server: Server):
        with server.lock:
            self.kill(server)
            shutil.rmtree(server.dir, ignore_errors=True)

    def attach(self, key, engine: str, admin_user: str, admin_password: str, database: str | None) -> Server:
        """A new, empty server for `key` with its master user; its first checkpoint."""
        existing = self.bound(key)
        if existing is not None:
            return existing
        server = self.new_server(engine, admin_user, admin_password)
        try:
            self.create_admin(server, database)
            self.checkpoint(server)
        except DbError:
            self.stop(server)
            raise
        self.bind(key, server)
        return server

    def checkpoint(self, server: Server) -> Dump:
        """A dump of the server now, kept as one of its checkpoints."""
        with server.lock:
            dump = self.dump(server)
            server.checkpoints.append((dump.taken_at, dump))
        return dump

    def born_of(self, key, dump: Dump, replica_of=None) -> Server:
        """A new server for `key` loaded with `dump` (a restore's, or a replica's first copy)."""
        server = self.new_server(dump.engine, dump.admin_user, dump.admin_password)
        try:
            self.load(server, dump)
        except DbError:
            self.stop(server)
            raise
        server.checkpoints.append((now(), dump))
        server.replica_of = replica_of
        self.bind(key, server)
        return server

    def replicate(self, replica: Server, source: Server) -> Dump:
        """Replication caught up now: the replica's data becomes the source's current data, on the
        same port (a fresh copy of the template loaded with a dump of the source)."""
        dump = self.dump(source)
        with replica.lock:
            self.kill(replica)
            self.boot(replica, self.template(replica.engine), port=replica.port)
            self.load(replica, dump)
            replica.admin_user, replica.admin_password = dump.admin_user, dump.admin_password
            replica.replica_of = source.key
            replica.checkpoints.append((now(), dump))
        return dump

    def listing(self) -> dict:
        with self.lock:
            servers = list(self.servers.values())
        return {"dir": self.state, "ca": os.path.join(self.state, "ca.pem") if self.state else None, "servers": [s.describe() for s in servers]}

    def answer(self, server: Server) -> dict:
        """What attach (and replicate) answer: where and how to connect."""
        return {
            "host": HOST,
            "port": server.port,
            "engine": server.engine,
            "admin_user": server.admin_user,
            "admin_password": server.admin_password,
            "ca": self.ca_path(),
        }


DATABASES = Databases()
