"""Connection settings, from ``PHASEGATE_*`` environment variables or a TOML file.

Precedence: keyword arguments, then the environment, then the file named by
``PHASEGATE_CONFIG`` (default ``phasegate.toml`` in the working directory), then defaults.
The defaults are the local stack that ``phasegate stack up`` starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from schemas.topics import Topics


def _config_file() -> Path:
    return Path(os.environ.get("PHASEGATE_CONFIG", "phasegate.toml"))


class Settings(BaseSettings):
    """Where phasegate finds its broker and its ClickHouse."""

    model_config = SettingsConfigDict(env_prefix="PHASEGATE_", extra="ignore", frozen=True)

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated"
    )
    topic_prefix: str = Field("phasegate.", description="prefix of every topic name")
    bootstrap_timeout_s: float = Field(
        2.0, gt=0, description="how long a log reader waits for a broker before it retries"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how every Kafka client connects"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = Field(None, description="never logged or shown")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = Field(None, description="client key (mutual TLS)")
    clickhouse_url: str | None = Field(
        None,
        repr=False,  # it may carry a password
        description="ClickHouse server, e.g. clickhouse://default:@127.0.0.1:9000; unset: "
        "the server `phasegate stack up` started while it runs, else the in-process chdb "
        "store at store_path",
    )
    database: str = Field("phasegate", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    store_path: Path = Field(Path(".phasegate/store"), description="chdb data folder")
    state_dir: Path = Field(Path(".phasegate"), description="local stack state and logs")
    worker_host: str = Field("127.0.0.1", description="address the worker's web server binds")
    worker_port: int = Field(6066, description="the stream worker's web server port")
    broker_storage: str = Field(
        "memory://tansu/",
        description="storage engine of the local Tansu broker (memory:// or s3://)",
    )
    s3_endpoint: str = Field(
        "http://127.0.0.1:5056", description="local S3 of a durable broker (s3:// storage)"
    )
    window_seconds: int = Field(60, gt=0, description="tumbling window size (event time)")
    lateness_seconds: int = Field(60, ge=0, description="allowed lateness of an event")
    rolling_seconds: list[int] = Field(
        [300, 900], description="rolling windows built from the tumbling ones"
    )
    baseline_system: str = Field("pipeline", description="the system migrated away from")
    candidate_system: str = Field("production", description="the system migrated to")
    max_future_seconds: int = Field(
        300, ge=0, description="events stamped further ahead than this go to the DLQ"
    )
    flush_seconds: float = Field(1.0, gt=0, description="how often stage 1 sends partials")
    sink_batch_rows: int = Field(
        50_000,
        gt=0,
        description="rows per insert of the sink (at most; a batch also goes after 1 s): "
        "ClickHouse's CPU a row falls with the insert's size, the sink's memory grows with "
        "it (docs/benchmarks.md)",
    )
    emit_compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = Field(
        "lz4",
        description="compression of the Emitter's batches (no level setting); lz4 "
        "measured cheapest for the application: bench/bench_emit.py",
    )
    emit_client: Literal["auto", "kafka-python", "confluent-kafka"] = Field(
        "auto",
        description="the Emitter's Kafka client; auto: confluent-kafka when installed "
        "(a dependency: 5x less CPU an event), else kafka-python",
    )
    plan: Path | None = Field(
        None, description="the rollout plan file (TOML, YAML or JSON); unset: the default plan"
    )
    retention_seconds: int = Field(3600, gt=0, description="how long stage 2 keeps windows")
    dashboard_host: str = Field("127.0.0.1", description="address the dashboard binds")
    dashboard_port: int = Field(6067, description="the dashboard's web server port")
    dashboard_token: str | None = Field(
        None,
        description="when set, every dashboard API request must carry it (the page can "
        "change production traffic)",
    )

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def to_env(self) -> dict[str, str]:
        """These settings as ``PHASEGATE_*`` variables, for a child process (secrets too)."""
        data = self.model_dump(mode="json", exclude_none=True)
        for name in data:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                data[name] = value.get_secret_value()
        return {
            f"PHASEGATE_{k.upper()}": v if isinstance(v, str) else json.dumps(v)
            for k, v in data.items()
        }

    def kafka_options(self) -> dict[str, Any]:
        """Security options for every kafka-python client (empty for PLAINTEXT)."""
        options: dict[str, Any] = {}
        if self.kafka_security_protocol != "PLAINTEXT":
            options["security_protocol"] = self.kafka_security_protocol
        if self.kafka_security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.kafka_sasl_mechanism or "PLAIN"
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                from schemas.kafka_security import hide_from_kafka_logs  # (imports Settings)

                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
                hide_from_kafka_logs(options["sasl_plain_password"])
        for name in ("cafile", "certfile", "keyfile"):
            path = getattr(self, f"kafka_ssl_{name}")
            if path is not None:
                options[f"ssl_{name}"] = str(path)
        return options

    @property
    def kafka_url(self) -> str:
        """The bootstrap servers as Faust wants them (``kafka://h1:p1;h2:p2``)."""
        hosts = ";".join(h.strip() for h in self.bootstrap_servers.split(",") if h.strip())
        return f"kafka://{hosts}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)
