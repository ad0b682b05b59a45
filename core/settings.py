"""Runtime configuration, read once from `CF_*` environment variables.

Defaults describe the local stack that `cloud-factory stack up` starts on 127.0.0.1, so a developer
needs no configuration at all; deployments (docker-compose, production) override by environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "project_root"]


def project_root() -> Path:
    """The source checkout holding this package, or the working directory for a plain install.

    The state directory lives there so that every command run from anywhere in the checkout
    finds the same stack.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file():
        return here
    return Path.cwd()


class Settings(BaseSettings):
    """Every knob of the platform; one field per environment variable `CF_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="CF_", extra="ignore")

    state_dir: Path = Field(default_factory=lambda: project_root() / ".cloud-factory")
    env: str = "dev"
    host: str = "127.0.0.1"

    # The local stack's brokers: `kafka_brokers` KRaft nodes (each broker and controller) on consecutive
    # client ports from `kafka_port`, their controller listeners on consecutive ports from
    # `kafka_controller_port` (unset: right after the client ports, so 9093 for one broker).
    kafka_brokers: int = Field(default=1, ge=1, le=9)
    kafka_port: int = 9092
    kafka_controller_port: int | None = None
    kafka_bootstrap: str | None = None
    kafka_heap: str = "768m"
    kafka_partitions: int = 3
    # Replicas of every topic the platform creates, and the in-sync replicas an `acks=all` write needs.
    # Unset, both follow the broker count: one broker 1 and 1; three or more brokers 3 and 2, so one
    # broker may be down without refusing a write.
    kafka_replication_factor: int | None = Field(default=None, ge=1)
    kafka_min_insync_replicas: int | None = Field(default=None, ge=1)

    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_address: str | None = None
    temporal_namespace: str = "default"

    pg_port: int = 55432
    pg_user: str = "cloud_factory"
    pg_password: str = "cloud_factory"
    pg_database: str = "cloud_factory"
    database_url: str | None = None

    # `service/kid:secret,…` (see schemas._internal.keys); with neither this nor a keys file set, the
    # development keys `stack up` wrote into the state directory are used.
    signing_keys: str = ""
    signing_keys_file: Path | None = None
    signing_mode: str = "production"
    # Records signed longer ago than this are refused (Inconsistency → DLQ) unless an operator redrives them.
    max_event_age_h: float = Field(default=168.0, gt=0)

    fallback_dir: Path | None = None

    # Outbox relays delete rows published longer ago than this (hours); pending rows always stay.
    outbox_retention_h: float = Field(default=168.0, gt=0)

    # A record whose dead-lettering keeps failing this long (seconds) is parked in PostgreSQL and its
    # offset committed; a partition held on one failing offset longer than the second makes its
    # worker `degraded` in `stack status`.
    dlq_park_after_s: float = Field(default=180.0, gt=0)
    partition_stuck_after_s: float = Field(default=60.0, gt=0)

    # The HTTP edge (`cloud-factory worker api`): where it listens, each API key's token bucket
    # (requests per second, burst), the largest request body it reads, and how long it trusts a key
    # it looked up (a revocation is honoured within this plus the projection's lag).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_rate_per_s: float = Field(default=10.0, gt=0)
    api_burst: int = Field(default=20, ge=1)
    api_max_body_bytes: int = Field(default=16384, ge=256)
    api_key_cache_s: float = Field(default=1.0, ge=0)

    @property
    def spool_dir(self) -> Path:
        """Where producers spool records while Kafka is unreachable."""
        return self.fallback_dir or self.state_dir / "fallback"

    @property
    def development_keys_path(self) -> Path:
        """Where `stack up` writes the per-service development signing keys (mode 0600)."""
        return self.state_dir / "signing-keys"

    @property
    def kafka_broker_ports(self) -> list[int]:
        """The client port of each local broker, node 1 first."""
        return [self.kafka_port + index for index in range(self.kafka_brokers)]

    @property
    def kafka_controller_ports(self) -> list[int]:
        """The controller port of each local broker, node 1 first."""
        first = self.kafka_controller_port
        if first is None:
            first = self.kafka_port + self.kafka_brokers
        return [first + index for index in range(self.kafka_brokers)]

    @property
    def replication_factor(self) -> int:
        """Replicas of each topic the platform creates: the setting, else up to three, one per broker."""
        return self.kafka_replication_factor or min(3, self.kafka_brokers)

    @property
    def min_insync_replicas(self) -> int:
        """In-sync replicas an `acks=all` write needs: the setting, else a majority of the replicas
        when there are three or more (one may be down), else 1."""
        if self.kafka_min_insync_replicas is not None:
            return self.kafka_min_insync_replicas
        replicas = self.replication_factor
        return replicas // 2 + 1 if replicas >= 3 else 1

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or ",".join(f"{self.host}:{port}" for port in self.kafka_broker_ports)

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"{self.host}:{self.temporal_port}"

    @property
    def temporal_ui_url(self) -> str:
        return f"http://{self.host}:{self.temporal_ui_port}"

    @property
    def dsn(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return self.database_url or (
            f"postgresql+psycopg://{self.pg_user}:{self.pg_password}@{self.host}:{self.pg_port}/{self.pg_database}"
        )

    @property
    def libpq_dsn(self) -> str:
        """Plain libpq URL for psycopg without SQLAlchemy."""
        return self.dsn.replace("postgresql+psycopg://", "postgresql://", 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
