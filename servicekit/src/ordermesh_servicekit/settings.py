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
    http_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body any HTTP endpoint reads; larger ones get a 413."
    )
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
    instance_id: str = Field(
        default="",
        description="Stable name of this replica (e.g. the pod name of a StatefulSet, 'payments-0'). When set, the "
        "service's Kafka consumer uses static group membership (group.instance.id = '<instance_id>'): a "
        "replica restarted under the same name within the session timeout gets its partitions back at once, without "
        "a rebalance. Leave empty for replicas without stable names (dynamic membership). Two running replicas must "
        "never share a name: the broker fences the older one.",
    )
    kafka_session_timeout_ms: int = Field(
        default=6000, ge=1000,
        description="Consumer group session timeout: how long a replica that stopped heartbeating (killed, frozen) "
        "keeps its partitions before the broker gives them to another replica. Must lie within the broker's "
        "group.min.session.timeout.ms (default 6000) and group.max.session.timeout.ms. Lower means faster takeover "
        "after a crash, but more spurious rebalances on a loaded host.",
    )
    kafka_heartbeat_interval_ms: int = Field(
        default=1000, ge=100,
        description="How often consumers heartbeat; members learn of a rebalance on their next heartbeat, so this "
        "bounds how long each rebalance round waits. At most a third of the session timeout.",
    )
    kafka_rebalance_timeout_ms: int = Field(
        default=10000, ge=1000,
        description="How long the broker waits for every member to rejoin during a rebalance before dropping the "
        "late ones (aiokafka rejoins in the background, so this need not cover a batch's handling time).",
    )
    kafka_commit_interval_ms: int = Field(
        default=500, ge=0,
        description="While batches follow each other, a consumer commits its offsets at most this often (and as soon "
        "as it is idle, loses partitions or stops). A replica that crashes has the records since its last commit "
        "delivered again, and the inbox turns them into duplicates; 0 commits after every batch.",
    )
    kafka_max_poll_interval_ms: int = Field(
        default=300000, ge=1000,
        description="Longest time between two fetches before a consumer is deemed stuck and its partitions are "
        "given away; covers the slowest batch (a gateway that times out and is retried).",
    )
    parked_retry_seconds: float = Field(
        default=5.0, gt=0,
        description="How often parked messages (arrived before what they depend on) are tried again, besides right "
        "after their dependency is applied.",
    )
    parked_max_seconds: float = Field(
        default=86400.0, gt=0,
        description="How long a parked message may wait for its dependency before it is dead-lettered "
        "(error class DependencyMissing).",
    )
    startup_retry_max_seconds: float = Field(default=5.0, gt=0, description="Longest wait between start-up retries.")
    lag_interval_seconds: float = Field(default=15.0, gt=0, description="How often the consumer-lag and dead-letter gauges are read from Kafka.")
