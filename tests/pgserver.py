"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, pg_ctl start on a free
port of 127.0.0.1 (never another address), password authentication, stopped at the end.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` OS user (Debian's
package creates it) through `runuser -u postgres --`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Optional

USER = "bench"
PASSWORD = "s3cret-Pw"  # tests look for it in what bench writes
INITDB_GLOB = "/usr/lib/postgresql/*/bin/initdb"


def find_bindir() -> Optional[Path]:
    found = sorted(glob.glob(INITDB_GLOB), key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()])
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def unavailable_reason() -> Optional[str]:
    """Why no server can be started here, or None."""
    if find_bindir() is None:
        return ("PostgreSQL server binaries not found (" + INITDB_GLOB + "): install Debian's postgresql "
                "package (apt-get install postgresql; .ci/run does)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` OS user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing (util-linux)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg (the PostgreSQL driver) is not installed: pip install 'psycopg[binary]'"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        bindir = find_bindir()
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self.as_root = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)

    def _run(self, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}"
                               f"{self._log_tail()}")

    def _log_tail(self) -> str:
        log = self.root / "server.log"
        return f"\nserver log: {log.read_text()[-2000:]}" if log.exists() else ""

    def start(self) -> "PostgresServer":
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_root:
            info = pwd.getpwnam("postgres")
            os.chown(self.root, info.pw_uid, info.pw_gid)
            os.chown(pwfile, info.pw_uid, info.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync")
        last_error: Optional[Exception] = None
        for _ in range(3):  # another process may take the free port between the check and the bind
            self.port = _free_port()
            options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
                return self
            except RuntimeError as exc:
                last_error = exc
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh database; its postgresql:// URL (with the password)."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
