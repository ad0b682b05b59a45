"""The shape every stack component has, so the manager can start, probe and stop them alike."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from cloud_factory.stack._process import StackError, port_open, read_pid, terminate
from core.settings import Settings

__all__ = ["Component", "ComponentState", "ComponentStatus"]


class ComponentState(enum.StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # our process runs but does not answer yet (or any more)
    STOPPED = "stopped"
    FOREIGN = "foreign"  # its port answers, but the process is not one `stack up` started


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: ComponentState
    address: str
    pid: int | None
    log: Path
    detail: str = ""  # e.g. a broker's "leads 12 partitions, 0 under-replicated"


class Component(ABC):
    """One server process of the local stack, owned through a pid file in the state directory."""

    name: str
    start_timeout: float = 90.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / self.name
        self.log_path = settings.state_dir / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.settings.state_dir / "run" / f"{self.name}.pid"

    @property
    @abstractmethod
    def ports(self) -> list[int]:
        """Ports this component listens on; all must be free before it starts."""

    @property
    @abstractmethod
    def address(self) -> str: ...

    @abstractmethod
    def check_prerequisites(self) -> None:
        """Raise StackError naming what is missing (a binary, a package) and how to get it."""

    @abstractmethod
    def prepare(self) -> None:
        """One-time work before the first start (download jars, format storage, initdb)."""

    @abstractmethod
    def launch(self) -> None:
        """Spawn the server and record its pid; return without waiting for readiness."""

    @abstractmethod
    def probe(self) -> bool:
        """True when the server answers its protocol, not merely its port."""

    def after_ready(self) -> None:  # noqa: B027 - an optional hook: the default does nothing
        """Work that needs the running server (create a database, …)."""

    def detail(self) -> str:
        """What `stack status` adds about a healthy server (default: nothing)."""
        return ""

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def status(self) -> ComponentStatus:
        pid = self.pid()
        if pid is None:
            busy = any(port_open(self.settings.host, port) for port in self.ports)
            state = ComponentState.FOREIGN if busy else ComponentState.STOPPED
        else:
            state = ComponentState.HEALTHY if self.probe() else ComponentState.UNHEALTHY
        detail = self.detail() if state is ComponentState.HEALTHY else ""
        return ComponentStatus(self.name, state, self.address, pid, self.log_path, detail)

    def ensure_ports_free(self) -> None:
        for port in self.ports:
            if port_open(self.settings.host, port):
                raise StackError(
                    f"{self.name}: port {self.settings.host}:{port} is already in use by a process "
                    f"`stack up` did not start; stop it or choose another port (CF_* settings)"
                )

    def stop(self) -> bool:
        """Stop our process; False when there was none."""
        pid = self.pid()
        if pid is None:
            return False
        terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def failure(self, what: str) -> StackError:
        from cloud_factory.stack._process import tail

        last = tail(self.log_path)
        detail = f" — last log line: {last[:200]}" if last else ""
        return StackError(f"{self.name}: {what} (log: {self.log_path}){detail}")
