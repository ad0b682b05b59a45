"""The image's processes started as the container would start them, without a Docker engine.

`ImageInstall` repeats the Dockerfile's installs: a virtualenv of Debian's Python 3.11 (the image's
base is Debian's too) gets `requirements.lock` with the Dockerfile's own `pip install` line, then the
build context (what `.dockerignore` admits, where the COPY lines put it) is installed from a
root-owned working directory, as in the image. `ContainerProcess` runs a compose service's command
as the image's unprivileged user in that directory, with the image's ENV plus the service's
environment — its container paths (volumes, secrets) mapped to directories here, its host names to the
test stack — under `strace`, so the test can list every path the process wrote.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from core.settings import Settings
from tests.support.container_model import ROOT, Dockerfile, build_context

__all__ = ["ContainerProcess", "ImageInstall", "written_paths"]

DEBIAN_PYTHON = Path("/usr/bin/python3")
#: System calls that create, change or remove a file or directory.
WRITE_CALLS = (
    "open",
    "openat",
    "creat",
    "mkdir",
    "mkdirat",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "truncate",
    "chmod",
    "fchmodat",
)
_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")


def _pip_line(image: Dockerfile, startswith: str) -> str:
    lines = [run for run in image.runs if run.startswith(startswith)]
    assert len(lines) == 1, f"the Dockerfile has no single `RUN {startswith}…` line"
    return lines[0]


@dataclass
class ImageInstall:
    """The image's installed files under `root` (reused while requirements.lock is unchanged)."""

    root: Path
    image: Dockerfile = field(default_factory=Dockerfile.read)

    @property
    def venv(self) -> Path:
        lock = hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()[:12]
        return self.root / f"venv-{lock}"

    @property
    def app(self) -> Path:
        return self.root / "app"

    def build(self) -> None:
        assert DEBIAN_PYTHON.is_file(), "Debian's python3 is missing: scripts/setup.sh installs it"
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in (self.root, *self.root.parents):
            if directory == Path("/"):
                break
            directory.chmod(directory.stat().st_mode | 0o055)  # the image's user can read the install
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        self._copy_context()
        stamp = self.venv / ".locked-install-done"
        if not stamp.is_file():
            shutil.rmtree(self.venv, ignore_errors=True)
            subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(self.venv)], check=True)
            self._run(_pip_line(self.image, "pip install --require-hashes"), env)
            stamp.write_text("ok\n")
        self._run(_pip_line(self.image, "pip install --no-deps --no-build-isolation"), env)

    def _copy_context(self) -> None:
        shutil.rmtree(self.app, ignore_errors=True)
        self.app.mkdir(mode=0o755)
        context = build_context()
        for source, target in self.image.copies:
            destination = self.app / target
            for relative in sorted(p for p in context if p == source or p.startswith(source + "/")):
                path = (
                    destination / Path(relative).name
                    if target.endswith("/")
                    else destination / Path(relative).relative_to(source)
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / relative, path)

    def _run(self, line: str, env: dict[str, str]) -> None:
        result = subprocess.run(
            ["/bin/sh", "-c", line], cwd=self.app, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"RUN {line} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


@dataclass
class ContainerProcess:
    """One compose service's process, as the image's user, under strace."""

    install: ImageInstall
    name: str
    service: dict
    settings: Settings  # the test stack the service's host names are mapped to
    extra_env: dict[str, str] = field(default_factory=dict)
    image_env: dict[str, str] | None = None  # override the Dockerfile's ENV (negative controls)
    process: subprocess.Popen[str] | None = None

    @property
    def uid(self) -> int:
        return self.install.image.uid

    @property
    def home(self) -> Path:
        return self.install.root / "run" / self.name

    def paths(self) -> dict[str, Path]:
        """Container path → directory here: each volume of the service and each secret."""
        mapping = {}
        for volume in self.service.get("volumes", []):
            target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
            mapping[target] = self.home / "volumes" / target.strip("/").replace("/", "_")
        for secret in self.service.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret.get("target", secret["source"])
            mapping[f"/run/secrets/{secret_name}"] = self.home / "secrets" / secret_name
        return mapping

    def prepare(self, signing_keys: str) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True, mode=0o755)
        for target, here in self.paths().items():
            if target.startswith("/run/secrets/"):
                here.parent.mkdir(parents=True, exist_ok=True)
                here.write_text(signing_keys)
                here.chmod(0o400)  # as README tells: readable by the image's user only
            else:
                here.mkdir(parents=True)  # a new named volume takes the image directory's owner
            os.chown(here, self.uid, self.uid)
        (self.home / "trace").mkdir()
        os.chown(self.home / "trace", self.uid, self.uid)

    def environment(self) -> dict[str, str]:
        image_env = self.install.image.env if self.image_env is None else self.image_env
        raw = {**image_env, **{k: str(v) for k, v in (self.service.get("environment") or {}).items()}}
        mapped = {}
        for key, value in raw.items():
            for target, here in self.paths().items():
                if value == target or value.startswith(target + "/"):
                    value = str(here) + value[len(target) :]
            mapped[key] = value
        stack = self.settings
        mapped["CF_KAFKA_BOOTSTRAP"] = stack.bootstrap_servers
        mapped["CF_TEMPORAL_ADDRESS"] = stack.temporal_target
        ours = urlsplit(mapped["CF_DATABASE_URL"])
        assert ours.hostname == "postgres", mapped["CF_DATABASE_URL"]
        mapped["CF_DATABASE_URL"] = stack.dsn  # host, port and credentials are per deployment
        return {
            "PATH": f"{self.install.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/nonexistent",
            **mapped,
            **self.extra_env,
        }

    def _as_user(self, argv: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", *argv]

    def start(self, command: list[str]) -> None:
        trace = self.home / "trace" / "calls"
        argv = self._as_user(
            [
                "strace",
                "-f",
                "-qq",
                "-y",
                "-e",
                "trace=" + ",".join(WRITE_CALLS),
                "-e",
                "status=successful",
                "-o",
                str(trace),
                *self.install.image.entrypoint,
                *command,
            ]
        )
        self.log = (self.home / "output.log").open("w")
        self.process = subprocess.Popen(
            argv,
            cwd=self.install.app,
            env=self.environment(),
            text=True,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def healthcheck(self, test: list[str]) -> subprocess.CompletedProcess[str]:
        """Run the compose healthcheck (`CMD` argv or a `CMD-SHELL` line) as the image's user."""
        assert test[0] in ("CMD", "CMD-SHELL"), test
        argv = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
        return subprocess.run(
            self._as_user(argv),
            cwd=self.install.app,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def wait_healthy(self, test: list[str], timeout_s: float = 120.0) -> str:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited {self.process.returncode}:\n{self.output()[-3000:]}"
                )
            result = self.healthcheck(test)
            if result.returncode == 0:
                return result.stdout.strip()
            last = (result.stdout + result.stderr).strip()
            time.sleep(1.0)
        raise AssertionError(f"{self.name} never became healthy ({last}):\n{self.output()[-3000:]}")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM to the traced process (strace passes on its exit status)."""
        assert self.process is not None
        for child in _children(self.process.pid):
            os.kill(child, signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout_s}s of SIGTERM") from None
        finally:
            self.log.close()

    def output(self) -> str:
        return (self.home / "output.log").read_text(errors="replace")

    def written(self) -> set[str]:
        return written_paths((self.home / "trace" / "calls").read_text(errors="replace"), self.install.app)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


_CALL = re.compile(r"^\d+\s+(?P<call>\w+)\((?P<args>.*)\)\s+=\s+\d+")
_PATH_ARG = re.compile(r'(?:(?:\d+|AT_FDCWD)<(?P<dir>[^>]*)>|AT_FDCWD)?,?\s*"(?P<path>[^"]*)"')


def written_paths(trace: str, cwd: Path) -> set[str]:
    """Absolute paths the traced processes created, wrote, renamed or removed (strace -y output)."""
    paths = set()
    for line in trace.splitlines():
        match = _CALL.match(line)
        if not match:
            continue
        call, args = match["call"], match["args"]
        if call in ("open", "openat") and not _WRITE_FLAGS.search(args):
            continue
        for arg in _PATH_ARG.finditer(args):
            path = arg["path"]
            if not path:
                continue
            base = Path(arg["dir"]) if arg["dir"] else cwd
            paths.add(os.path.normpath(path if path.startswith("/") else str(base / path)))
    return paths
