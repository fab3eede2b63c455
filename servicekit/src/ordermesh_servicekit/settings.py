"""Service settings read from the environment (pydantic-settings); subclass per service."""

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from .kafka_clients import KafkaClientSettings


class ServiceSettings(KafkaClientSettings):
    """What every service needs to run: where Kafka and its database are, and how to behave.

    Kafka's address and credentials come from `KafkaClientSettings`; any setting may also be read from a
    mounted file (`<VARIABLE>_FILE`, or `ORDERMESH_SECRETS_DIR`; see `setting_files`).
    """

    model_config = SettingsConfigDict(env_prefix="ORDERMESH_", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://localhost/ordermesh"),
        validation_alias=AliasChoices("DATABASE_URL", "ORDERMESH_DATABASE_URL"),
        description="PostgreSQL DSN of this service's own database.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address of the health/metrics/ingress HTTP server.")
    http_port: int = Field(default=8000, description="Port of the health/metrics/ingress HTTP server.")
    log_level: str = Field(default="INFO", description="Log level.")
    consumer_batch_size: int = Field(default=100, ge=1, description="Most records taken from Kafka at once.")
    consumer_concurrency: int = Field(
        default=8, ge=1, description="Orders (Kafka keys) of one batch handled at the same time; one order stays in order."
    )
    handler_attempts: int = Field(
        default=3,
        ge=1,
        description="Times a handler is tried after an unexpected error before the message is dead-lettered with "
        "the error's class (transient errors — database, Kafka or a gateway unreachable — are retried without limit).",
    )
    dead_letter_max_bytes: int = Field(
        default=900_000,
        ge=1024,
        description="Largest dead letter written as it is; a larger one is cut (the original kept in dead_letter_originals).",
    )
    health_check_seconds: float = Field(
        default=5.0, gt=0, description="Interval of the Kafka metadata check and the outbox backlog gauges."
    )
    relay_batch_size: int = Field(default=500, ge=1, description="Most outbox rows published per round trip.")
    relay_poll_seconds: float = Field(default=0.5, gt=0, description="Outbox poll interval besides LISTEN/NOTIFY.")
    db_pool_size: int = Field(default=10, ge=1, description="Connections in this service's pool.")
    api_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token of the staff JSON endpoints; empty refuses every call."
    )
    startup_retry_max_seconds: float = Field(default=5.0, gt=0, description="Longest wait between start-up retries.")
