"""The container deployment read as Docker would read it, for the offline checks of docker-compose.yml.

No Docker engine runs here, so the tests take the files apart themselves: `compose_config` is the
compose file after Debian's docker-compose has merged and interpolated it (with `.env.example` as the
`.env`), `Dockerfile` the few instructions the image uses, `build_context` the files `.dockerignore`
lets into the build, and `settings_problems` what a service's settings would be inside its container
(the image's ENV plus the service's environment, nothing from the host) and why they would not work.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = {
    "default": ("docker-compose.yml",),
    "cluster": ("docker-compose.yml", "docker-compose.cluster.yml"),
}
#: The Compose specification's JSON Schema as Debian's docker-compose ships it (it validates with it).
COMPOSE_SPEC = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")

__all__ = [
    "COMPOSE_FILES",
    "COMPOSE_SPEC",
    "ROOT",
    "Dockerfile",
    "build_context",
    "compose_config",
    "image_services",
    "settings_in_container",
    "settings_problems",
]


def compose_config(profile: str = "default", env_file: Path | None = ROOT / ".env.example") -> dict:
    """`docker-compose config` of the profile's files: merged, anchors resolved, variables interpolated."""
    result = compose_command(profile, env_file, "config")
    if result.returncode != 0:
        raise AssertionError(f"docker-compose config ({profile}) failed: {result.stderr.strip()}")
    return yaml.safe_load(result.stdout)


def compose_command(profile: str, env_file: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: scripts/setup.sh installs Debian's docker-compose"
    argv = [binary]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    for name in COMPOSE_FILES[profile]:
        argv += ["-f", str(ROOT / name)]
    # An empty environment: what the user's shell exports must not decide the outcome.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    return subprocess.run([*argv, *args], capture_output=True, text=True, cwd=ROOT, env=env)


def image_services(config: dict) -> dict[str, dict]:
    """The services built from this repository's Dockerfile."""
    return {name: svc for name, svc in config["services"].items() if "build" in svc}


@dataclass
class Dockerfile:
    """The instructions of the project's Dockerfile that decide how its processes run."""

    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path = ROOT / "Dockerfile") -> Dockerfile:
        image = cls()
        for line in _logical_lines(path.read_text()):
            word, _, rest = line.partition(" ")
            word = word.upper()
            if word == "FROM":
                image.base = rest.split()[0]
            elif word == "ENV":
                for part in shlex.split(rest):
                    name, _, value = part.partition("=")
                    image.env[name] = value
            elif word == "WORKDIR":
                image.workdir = rest.strip()
            elif word == "USER":
                image.user = rest.strip()
            elif word in ("ENTRYPOINT", "CMD"):
                setattr(image, word.lower(), json.loads(rest))
            elif word == "COPY":
                *sources, target = rest.split()
                image.copies += [(source, target) for source in sources]
            elif word == "RUN":
                image.runs.append(rest.strip())
        return image

    @property
    def uid(self) -> int:
        return int(self.user.split(":")[0])


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(" ".join((current + stripped).split()))
        current = ""
    return lines


def build_context(root: Path = ROOT) -> set[str]:
    """Every file (relative path) `.dockerignore` lets into the build context: its patterns in order,
    the last one that matches a path or one of its parents deciding, `!` re-including."""
    patterns = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            patterns.append((negate, os.path.normpath(line.lstrip("!"))))
    kept = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for filename in filenames:
            relative = os.path.relpath(os.path.join(dirpath, filename), root)
            if _included(relative, patterns):
                kept.add(relative)
    return kept


def _included(relative: str, patterns: list[tuple[bool, str]]) -> bool:
    parts = relative.split(os.sep)
    candidates = [os.sep.join(parts[:i]) for i in range(1, len(parts) + 1)]
    included = True
    for negate, pattern in patterns:
        if any(_match(pattern, candidate) for candidate in candidates):
            included = negate
    return included


def _match(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        tail = pattern[3:]
        pieces = path.split(os.sep)
        return any(fnmatch.fnmatchcase(os.sep.join(pieces[i:]), tail) for i in range(len(pieces)))
    return fnmatch.fnmatchcase(path, pattern)


def settings_in_container(image: Dockerfile, service: dict) -> Settings:
    """The settings a process of `service` reads in its container: nothing from the host's environment."""
    env = {**image.env, **{k: str(v) for k, v in (service.get("environment") or {}).items()}}
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _volume_targets(service: dict) -> list[str]:
    targets = []
    for volume in service.get("volumes", []):
        targets.append(volume["target"] if isinstance(volume, dict) else volume.split(":")[1])
    return targets


def _listener_ports(config: dict, host: str) -> set[int]:
    """Ports `host` (a Kafka service) advertises to other containers."""
    env = config["services"][host].get("environment", {})
    ports = set()
    for listener in str(env.get("KAFKA_ADVERTISED_LISTENERS", "")).split(","):
        address = listener.split("://", 1)[-1]
        name, _, port = address.rpartition(":")
        if name == host:
            ports.add(int(port))
    return ports


def settings_problems(config: dict, name: str, image: Dockerfile) -> list[str]:
    """Why service `name` would not work in its container with the settings it gets ([] if none)."""
    service = config["services"][name]
    settings = settings_in_container(image, service)
    services = config["services"]
    problems = []
    for address in settings.bootstrap_servers.split(","):
        host, _, port = address.rpartition(":")
        if host not in services:
            problems.append(f"Kafka bootstrap {address} is no compose service (it only works on the host)")
        elif int(port) not in _listener_ports(config, host):
            problems.append(
                f"Kafka bootstrap {address}: {host} advertises no listener on {port} to containers"
            )
    host, _, port = settings.temporal_target.rpartition(":")
    if host != "temporal" or port != "7233":
        problems.append(f"Temporal address {settings.temporal_target} is not the temporal service")
    url = urlsplit(settings.dsn)
    database = services.get(url.hostname or "", {}).get("environment", {})
    if url.hostname not in services or url.port != 5432:
        problems.append(f"database {url.hostname}:{url.port} is not a compose PostgreSQL on 5432")
    elif (url.username, url.password, url.path.lstrip("/")) != (
        database.get("POSTGRES_USER"),
        database.get("POSTGRES_PASSWORD"),
        database.get("POSTGRES_DB"),
    ):
        problems.append(f"database credentials of {name} differ from the {url.hostname} service's")
    volumes = _volume_targets(service)
    for what, path in (("state directory", settings.state_dir), ("fallback spool", settings.spool_dir)):
        if not any(Path(path).is_relative_to(target) for target in volumes):
            problems.append(f"{what} {path} is on no volume of {name} (lost on restart, or not writable)")
    secrets = {
        f"/run/secrets/{s if isinstance(s, str) else s.get('target', s['source'])}"
        for s in service.get("secrets", [])
    }
    if settings.signing_keys.strip():
        problems.append("signing keys are written into the compose file")
    if str(settings.signing_keys_file) not in secrets:
        problems.append(f"signing keys file {settings.signing_keys_file} is no secret of {name}")
    if settings.signing_mode != "production":
        problems.append(f"signing mode is {settings.signing_mode}, not production")
    if "api" in service.get("command", []):
        published = {
            int(str(p["target"]) if isinstance(p, dict) else str(p).split(":")[-1])
            for p in service.get("ports", [])
        }
        if settings.api_host in ("127.0.0.1", "localhost"):
            problems.append(f"the API listens on {settings.api_host}: unreachable from outside the container")
        if settings.api_port not in published:
            problems.append(f"the API listens on {settings.api_port}, which is not published")
    return problems
