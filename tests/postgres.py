"""A throwaway PostgreSQL server for the tests: Debian's own binaries, a temporary cluster, no system service.

The cluster lives in a fresh temporary directory, listens on 127.0.0.1 only (a free port; its unix socket stays in
that directory) and is stopped by its own pid when the test session ends. PostgreSQL refuses to run as root: under
root the server runs as ``postgres`` (the user Debian's package creates) or, failing that, ``nobody``.
Each test gets a database of its own, created and dropped by a non-superuser role with a generated password.

``AWESOMME_TEST_DATABASE_URL`` points the tests at a server of one's own instead (a hospital's test server): a
role there that may create databases (``CREATEDB``); nothing is started then.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

__all__ = ["TEST_URL_VARIABLE", "PostgresServer", "PostgresUnavailable", "find_bindir", "local_cluster", "server"]

TEST_URL_VARIABLE = "AWESOMME_TEST_DATABASE_URL"
DRIVER = "postgresql+psycopg"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
DROP_ATTEMPTS = 10
# Nothing here needs to survive a crash: durability off makes creating a database per test several times cheaper.
THROWAWAY_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    # an autovacuum worker on a test's database is a process of another role: DROP ... WITH (FORCE) may not end it
    "autovacuum": "off",
    "unix_socket_permissions": "0700",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL to test against: the tests that need one fail with this message (CI installs it)."""


@dataclass(frozen=True)
class PostgresServer:
    """A server the tests may create databases on; ``url`` logs in as a role allowed to (``CREATEDB``)."""

    url: str

    def create_database(self) -> str:
        """A new, empty database owned by the server's role; its SQLAlchemy URL (password included)."""
        name = f"awesomme_test_{secrets.token_hex(6)}"
        with self._connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return _render(make_url(self.url).set(database=name))

    def drop_database(self, url: str) -> None:
        """Drops a database made by ``create_database``; connections a test left open are ended (FORCE)."""
        name = make_url(url).database
        assert name and name.startswith("awesomme_test_"), f"not a test database: {name}"
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        for attempt in range(DROP_ATTEMPTS):
            try:
                with self._connect() as connection:
                    connection.execute(statement)
                return
            except psycopg.errors.InsufficientPrivilege:
                # another role's process (on a server of one's own: its autovacuum) is on the database for a moment
                if attempt == DROP_ATTEMPTS - 1:
                    raise
                time.sleep(0.5)

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(**_connect_args(make_url(self.url)), autocommit=True, connect_timeout=10)


def _render(url: URL) -> str:
    return url.set(drivername=DRIVER).render_as_string(hide_password=False)


def _connect_args(url: URL) -> dict[str, object]:
    return {**url.translate_connect_args(username="user", database="dbname"), **dict(url.query)}


def find_bindir() -> Path:
    """Debian keeps the server programs in /usr/lib/postgresql/<major>/bin (not on PATH): the newest one wins."""
    found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found.sort(key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0)
    if found:
        return found[-1]
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).parent
    raise PostgresUnavailable(
        "PostgreSQL server programs not found (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH). "
        "Install them with `scripts/install-system-deps.sh --test-tools` (Debian package `postgresql`), "
        f"or set {TEST_URL_VARIABLE}=postgresql+psycopg://user:password@host:port/db (a role with CREATEDB)."
    )


def _server_account() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, unless we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the server's process: stop (fast shutdown) if the test process dies without stopping it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


class _Cluster:
    def __init__(self, bindir: Path, root: Path, account: pwd.struct_passwd | None) -> None:
        self.bindir, self.root, self.account = bindir, root, account
        self.data, self.sockets, self.log = root / "data", root / "sockets", root / "server.log"
        self.superuser, self.superuser_password = "awesomme_superuser", secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def _as_server_user(self) -> dict[str, object]:
        if self.account is None:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def init(self) -> None:
        self.sockets.mkdir()
        password_file = self.root / "superuser-password"
        password_file.write_text(self.superuser_password + "\n")
        password_file.chmod(0o600)
        if self.account is not None:
            for path in (self.root, self.sockets, password_file):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        command = [
            str(self.bindir / "initdb"),
            f"--pgdata={self.data}",
            f"--username={self.superuser}",
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=self._env(), **self._as_server_user())
        password_file.unlink()
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"initdb failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
            )

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC", "HOME": str(self.root)}

    def start(self) -> None:
        for _attempt in range(5):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            settings = {**THROWAWAY_SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.sockets)}
            command = [str(self.bindir / "postgres"), "-D", str(self.data)]
            for name, value in settings.items():
                command += ["-c", f"{name}={value}"]
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                    **self._as_server_user(),
                )
            if self._wait_until_ready():
                return
            if "could not bind" not in self._log_tail() and "could not create" not in self._log_tail():
                break
        raise PostgresUnavailable(f"PostgreSQL did not start; its log ends with:\n{self._log_tail()}")

    def _wait_until_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with psycopg.connect(**self._superuser_args("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        return False

    def _superuser_args(self, database: str) -> dict[str, object]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.superuser,
            "password": self.superuser_password,
            "dbname": database,
        }

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def test_role(self) -> PostgresServer:
        """A non-superuser role with CREATEDB and a generated password, as a deployment's role would be."""
        role, password = "awesomme_test", secrets.token_urlsafe(24)
        with psycopg.connect(**self._superuser_args("postgres"), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
            connection.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(role), sql.Identifier(role))
            )
        url = URL.create(DRIVER, role, password, "127.0.0.1", self.port, role)
        return PostgresServer(_render(url))

    def stop(self) -> None:
        """SIGINT to the postmaster we started (a fast shutdown), SIGKILL if it lingers; nothing else is touched."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def local_cluster() -> Iterator[PostgresServer]:
    """A fresh cluster from Debian's binaries for as long as the block runs; its directory is removed after."""
    bindir, account = find_bindir(), _server_account()
    # The system temporary directory, not pytest's (0700 under root): the server's user must reach its own files.
    root = Path(tempfile.mkdtemp(prefix="awesomme-postgres-"))
    cluster = _Cluster(bindir, root, account)
    try:
        cluster.init()
        cluster.start()
        yield cluster.test_role()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def server() -> Iterator[PostgresServer]:
    """The tests' PostgreSQL: ``AWESOMME_TEST_DATABASE_URL`` when set, else a throwaway local cluster."""
    given = os.environ.get(TEST_URL_VARIABLE, "").strip()
    if given:
        yield PostgresServer(_render(make_url(given)))
        return
    with local_cluster() as local:
        yield local
