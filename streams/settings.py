"""The one settings object: environment variables with prefix ``LOANWATCH_``, validated before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import topics

#: Settings that only mean something over TLS (SSL or SASL_SSL).
_TLS_ONLY_FIELDS = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "kafka_ssl_key_password")


class TopicNames(BaseModel):
    """Topic names (env ``LOANWATCH_TOPICS__ALERTS`` and so on); defaults are the contract names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    behavior: str = topics.BEHAVIOR
    repayment: str = topics.REPAYMENT
    inquiry: str = topics.INQUIRY
    rules: str = topics.RULES
    allowlist: str = topics.ALLOWLIST
    alerts: str = topics.ALERTS
    limit_actions: str = topics.LIMIT_ACTIONS
    profiles: str = topics.PROFILES
    deadletter: str = topics.DEADLETTER
    links: str = topics.LINKS
    rings: str = topics.RINGS


class Settings(BaseSettings):
    """Everything a loanwatch process needs to know, built once and passed down.

    ``kafka_bootstrap`` unset means "the local broker that ``loanwatch demo`` starts"; ``clickhouse_url`` unset
    means embedded chdb under ``home``.
    """

    # Errors name the field and the reason, never the input: it may hold a password.
    model_config = SettingsConfigDict(
        env_prefix="LOANWATCH_", frozen=True, extra="forbid", env_nested_delimiter="__", hide_input_in_errors=True
    )

    home: Path = Field(default=Path(".loanwatch"), description="local state: broker data, jars, chdb data")
    app_id: str = Field(default="loanwatch", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port]; unset = local broker")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="SASL_* needs the three kafka_sasl_* settings; *SSL uses kafka_ssl_*"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism; required with SASL_PLAINTEXT / SASL_SSL"
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user; required with SASL_*")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password; required with SASL_*; a secret, never printed"
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM CA bundle that signs the brokers' certificates; unset = system trust store"
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="PEM client certificate for mutual TLS; needs kafka_ssl_keyfile"
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of the client certificate; needs kafka_ssl_certfile"
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="password of an encrypted kafka_ssl_keyfile; a secret, never printed"
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="check that the broker's certificate names the host connected to"
    )
    partitions: int = Field(default=4, ge=1, le=1024, description="partitions of every input and output topic")
    replication_factor: int = Field(default=1, ge=1, le=16)

    clickhouse_url: SecretStr | None = Field(
        default=None, description="clickhouse://user:password@host:9000/db; unset = embedded chdb under home"
    )
    clickhouse_database: str = Field(default="loanwatch", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    profile_api_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s/@]+(:\d+)?(/\S*)?$",
        description="base URL of a worker's profile API the console asks (http://worker:6066); unset = not shown",
    )

    rules_file: Path | None = Field(default=None, description="YAML rule set; unset = built-in defaults")

    writer_batch_rows: int = Field(default=5000, ge=1, le=1_000_000)
    writer_batch_seconds: float = Field(default=1.0, gt=0, le=300)
    writer_group: str = "loanwatch-clickhouse-writer"
    writer_retry_max_seconds: float = Field(default=30.0, gt=0, le=3600)

    worker_commit_interval: float = Field(default=1.0, gt=0, le=60)
    worker_batch_size: int = Field(default=500, ge=1, le=100_000, description="events an agent takes at once")
    worker_batch_seconds: float = Field(default=0.2, gt=0, le=10, description="longest wait to fill a batch")
    worker_stall_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description="a worker whose owned partitions have had records waiting and neither a record applied nor a "
        "commit for this long ends itself (exit 75) for its supervisor to restart; 0 = never",
    )
    model_checkpoint_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="how often each partition's models are checkpointed"
    )
    entity_sweep_seconds: float = Field(
        default=600.0, gt=0, le=86400, description="how often entity states unused for the retention are deleted"
    )
    store: str = Field(default="memory://", description="Faust table store: memory:// or rocksdb://")
    web_port: int | None = Field(
        default=None, ge=1, le=65535, description="worker's HTTP port for the profile API; unset = no web server"
    )
    web_bind: str = Field(default="127.0.0.1", description="interface the worker's web server listens on")
    web_host: str = Field(
        default="127.0.0.1", description="host name other workers reach this one by (requests are forwarded there)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="lowest level logged (Kafka client libraries stay at WARNING unless DEBUG)"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="log lines on stderr: text for terminals, json (one object a line) for shippers"
    )
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="port of a worker's Prometheus /metrics; 0 = off (suggested 9464)"
    )
    writer_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="port of the writer's Prometheus /metrics; 0 = off (suggested 9465)"
    )
    metrics_addr: str = Field(
        default="0.0.0.0",  # noqa: S104 — Prometheus scrapes from another host or container
        description="interface the /metrics endpoints listen on",
    )

    topics: TopicNames = Field(default_factory=TopicNames)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, value: str | None) -> str | None:
        if value is None:
            return None
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        if not hosts:
            raise ValueError("must name at least one host:port")
        for host in hosts:
            name, sep, port = host.rpartition(":")
            if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{host!r} is not host:port")
        return ",".join(hosts)

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("clickhouse://", "clickhouses://")):
            raise ValueError("must start with clickhouse:// or clickhouses:// (native protocol)")
        return value

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        sasl_fields = ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
        if self.kafka_security_protocol.startswith("SASL"):
            missing = [name for name in sasl_fields if getattr(self, name) is None]
            if missing:
                raise ValueError(f"kafka_security_protocol={self.kafka_security_protocol} needs {', '.join(missing)}")
        else:
            # Credentials the protocol would silently ignore are a misconfiguration, not a default.
            stray = [name for name in sasl_fields if getattr(self, name) is not None]
            if stray:
                raise ValueError(f"{', '.join(stray)} set, but kafka_security_protocol={self.kafka_security_protocol}")
        return self

    @model_validator(mode="after")
    def _ssl_consistent(self) -> Settings:
        given = [name for name in _TLS_ONLY_FIELDS if getattr(self, name) is not None]
        if given and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError(f"{', '.join(given)} set, but kafka_security_protocol={self.kafka_security_protocol}")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile go together (mutual TLS needs both)")
        if self.kafka_ssl_key_password is not None and self.kafka_ssl_keyfile is None:
            raise ValueError("kafka_ssl_key_password set without kafka_ssl_keyfile")
        return self

    @property
    def chdb_path(self) -> Path:
        """Where embedded ClickHouse keeps its data when no server URL is set."""
        return self.home / "chdb"

    def bootstrap(self) -> str:
        """The Kafka bootstrap servers; raises when the local broker has not been started."""
        if self.kafka_bootstrap is None:
            raise RuntimeError("LOANWATCH_KAFKA_BOOTSTRAP is not set and no local broker was started")
        return self.kafka_bootstrap

    @property
    def entity_observations_topic(self) -> str:
        """Internal: behaviour events' entities, re-keyed by entity (the entity agent's input)."""
        return f"{self.app_id}-entity-observations"

    @property
    def ring_links_topic(self) -> str:
        """Internal, one partition: links and customers' own tiers for the single ring agent."""
        return f"{self.app_id}-ring-links"

    @property
    def ring_membership_topic(self) -> str:
        """Internal: ring scores for members, keyed by customer (read by the profile agent)."""
        return f"{self.app_id}-ring-membership"

    def confluent_config(self) -> dict[str, str | int | float | bool]:
        """Connection settings for confluent-kafka clients (librdkafka names)."""
        conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap(),
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism is not None:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username is not None:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password is not None:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_security_protocol.endswith("SSL"):
            # No CA file: librdkafka probes the system trust store, as Python's ssl does.
            if self.kafka_ssl_cafile is not None:
                conf["ssl.ca.location"] = str(self.kafka_ssl_cafile)
            if self.kafka_ssl_certfile is not None and self.kafka_ssl_keyfile is not None:
                conf["ssl.certificate.location"] = str(self.kafka_ssl_certfile)
                conf["ssl.key.location"] = str(self.kafka_ssl_keyfile)
            if self.kafka_ssl_key_password is not None:
                conf["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
            conf["ssl.endpoint.identification.algorithm"] = "https" if self.kafka_ssl_check_hostname else "none"
        return conf

    def reader_config(self, purpose: str) -> dict[str, str | int | float | bool]:
        """A confluent-kafka consumer that reads assigned partitions outside any group, to their end.

        librdkafka requires a group id; it is named after ``purpose`` and never joined or committed.
        """
        return {
            **self.confluent_config(),
            "group.id": f"{self.app_id}-{purpose}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }

    def to_env(self) -> dict[str, str]:
        """These settings as ``LOANWATCH_*`` variables, to start another loanwatch process with the same view."""
        env: dict[str, str] = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, TopicNames):
                env.update({f"LOANWATCH_TOPICS__{k.upper()}": v for k, v in value.model_dump().items()})
            elif isinstance(value, SecretStr):
                env[f"LOANWATCH_{name.upper()}"] = value.get_secret_value()
            else:
                env[f"LOANWATCH_{name.upper()}"] = str(value)
        return env
