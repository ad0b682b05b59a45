"""PostgreSQL from Debian's `postgresql` package: a private cluster on loopback for the project.

PostgreSQL refuses to run as root, so when we are root the cluster is owned by and run as the
`postgres` system user the Debian package creates. If that user cannot reach the state directory
(a checkout under a private home), the data directory lives under /var/tmp with a symlink from the
state directory, so the state still has one home.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cloud_factory.stack._component import Component
from cloud_factory.stack._process import StackError, port_open

__all__ = ["PostgresComponent", "postgres_bin_dir"]

_SERVICE_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """Directory holding initdb/pg_ctl: Debian's versioned layout first (newest), then PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name),
                        reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


class PostgresComponent(Component):
    name = "postgres"
    start_timeout = 60.0

    @property
    def ports(self) -> list[int]:
        return [self.settings.pg_port]

    @property
    def address(self) -> str:
        s = self.settings
        return f"{s.host}:{s.pg_port}/{s.pg_database}"

    @property
    def cluster_dir(self) -> Path:
        """The real directory behind `home` (which may be a symlink): the service user needs a
        path it can traverse, and the symlink's parents may be private to root."""
        return self.home.resolve()

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def pid_file(self) -> Path:
        # postgres writes its own pid file; we read it rather than keep a second one.
        return self.data_dir / "postmaster.pid"

    @property
    def server_log(self) -> Path:
        return self.cluster_dir / "postgres.log"

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _run_as_owner(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
        if self._as_root:
            argv = ["runuser", "-u", _SERVICE_USER, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, **kwargs)

    def check_prerequisites(self) -> None:
        if postgres_bin_dir() is None:
            raise StackError("postgres: PostgreSQL server binaries not found; "
                             "install Debian's `postgresql` package")
        if self._as_root:
            try:
                import pwd

                pwd.getpwnam(_SERVICE_USER)
            except KeyError as exc:
                raise StackError("postgres: running as root needs the `postgres` user "
                                 "(Debian's postgresql package)") from exc

    def prepare(self) -> None:
        self._place_home()
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self._chown(self.home)
        if self.data_dir.exists() and not any(self.data_dir.iterdir()):
            self.data_dir.rmdir()
        with tempfile.NamedTemporaryFile("w", dir=self.cluster_dir, delete=False) as pw:
            pw.write(self.settings.pg_password + "\n")
        self._chown(Path(pw.name))
        try:
            result = self._run_as_owner([
                str(postgres_bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", self.settings.pg_user,
                f"--pwfile={pw.name}", "--auth-local=trust", "--auth-host=scram-sha-256",
                "--encoding=UTF8", "--locale=C",
            ])
        finally:
            os.unlink(pw.name)
        self._append_log(result)
        if result.returncode != 0:
            raise self.failure(f"initdb failed (exit {result.returncode})")

    def _place_home(self) -> None:
        """Make sure the service user can reach the data directory (see module docstring)."""
        if not self._as_root or self.home.exists():
            return
        self.home.parent.mkdir(parents=True, exist_ok=True)
        probe = self._run_as_owner(["test", "-x", str(self.home.parent)])
        if probe.returncode == 0:
            self.home.mkdir()
            return
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        outside = Path("/var/tmp") / f"cloud-factory-postgres-{digest}"
        outside.mkdir(parents=True, exist_ok=True)
        self.home.symlink_to(outside, target_is_directory=True)

    def _chown(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, user=_SERVICE_USER, group=_SERVICE_USER)

    def _append_log(self, result: subprocess.CompletedProcess[str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write(result.stdout + result.stderr)

    def launch(self) -> None:
        s = self.settings
        options = f"-c listen_addresses={s.host} -p {s.pg_port} -k {self.cluster_dir}"
        result = self._run_as_owner([
            str(postgres_bin_dir() / "pg_ctl"), "start", "-D", str(self.data_dir),
            "-l", str(self.server_log), "-o", options, "-w", "-t", str(int(self.start_timeout)),
        ])
        self._append_log(result)
        if result.returncode != 0:
            raise self.failure(f"pg_ctl start failed (exit {result.returncode}); see also {self.server_log}")

    def probe(self) -> bool:
        s = self.settings
        if not port_open(s.host, s.pg_port):
            return False
        import psycopg

        try:
            with psycopg.connect(host=s.host, port=s.pg_port, user=s.pg_user, password=s.pg_password,
                                 dbname="postgres", connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def after_ready(self) -> None:
        """Create the project database once."""
        import psycopg

        s = self.settings
        with psycopg.connect(host=s.host, port=s.pg_port, user=s.pg_user, password=s.pg_password,
                             dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.pg_database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{s.pg_database}"')

    def stop(self) -> bool:
        if self.pid() is None:
            return False
        result = self._run_as_owner([str(postgres_bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir),
                                     "-m", "fast", "-w", "-t", "60"])
        self._append_log(result)
        return result.returncode == 0
