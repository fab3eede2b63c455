"""How every ordermesh Kafka client connects: bootstrap servers, TLS and SASL, from one set of settings.

The services' broker and relay, the admin clients, the staff CLI and the devstack tools all build their
clients from `KafkaClientSettings`, so a managed Kafka (SASL_SSL with SCRAM or PLAIN, a private CA)
is configured once, by variables or mounted files.
"""

import asyncio
import ssl
from pathlib import Path
from typing import Any, Literal

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.partitioner import DefaultPartitioner, murmur2
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from .setting_files import FileAwareSettings

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
_SASL_SECURITY: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


_DEFAULT_PARTITIONER = DefaultPartitioner()


def _variable(name: str) -> AliasChoices:
    return AliasChoices(name, f"ORDERMESH_{name}")


class KafkaClientSettings(FileAwareSettings):
    """Where Kafka is and how to authenticate to it (each also readable as ORDERMESH_<NAME> or <NAME>_FILE)."""

    model_config = SettingsConfigDict(env_prefix="ORDERMESH_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=_variable("KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated Kafka bootstrap servers.",
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        validation_alias=_variable("KAFKA_SECURITY_PROTOCOL"),
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512",
        validation_alias=_variable("KAFKA_SASL_MECHANISM"),
        description="SASL mechanism when the protocol is SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    kafka_sasl_username: str = Field(
        default="", validation_alias=_variable("KAFKA_SASL_USERNAME"), description="SASL user name."
    )
    kafka_sasl_password: SecretStr = Field(
        default=SecretStr(""), validation_alias=_variable("KAFKA_SASL_PASSWORD"), description="SASL password."
    )
    kafka_ssl_ca_file: str = Field(
        default="",
        validation_alias=_variable("KAFKA_SSL_CA_FILE"),
        description="PEM file of the CA that signed the brokers' certificates; empty: the system's CAs.",
    )

    @model_validator(mode="after")
    def _sasl_needs_a_user(self) -> "KafkaClientSettings":
        if self.kafka_security_protocol.startswith("SASL_") and not self.kafka_sasl_username:
            raise ValueError(f"KAFKA_SASL_USERNAME is required with KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}")
        if self.kafka_ssl_ca_file and not Path(self.kafka_ssl_ca_file).is_file():
            raise ValueError(f"KAFKA_SSL_CA_FILE {self.kafka_ssl_ca_file} is not a file")
        return self

    @property
    def uses_tls(self) -> bool:
        """Whether connections are encrypted."""
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether connections authenticate with SASL."""
        return self.kafka_security_protocol.startswith("SASL_")

    def describe(self) -> str:
        """One line for logs: protocol, mechanism and user, never the password."""
        if self.uses_sasl:
            return f"{self.kafka_security_protocol} {self.kafka_sasl_mechanism} as {self.kafka_sasl_username!r}"
        return self.kafka_security_protocol


def ssl_context(settings: KafkaClientSettings) -> ssl.SSLContext | None:
    """A client TLS context verifying the brokers against the configured CA (or the system's); None without TLS."""
    if not settings.uses_tls:
        return None
    return ssl.create_default_context(cafile=settings.kafka_ssl_ca_file or None)


def aiokafka_options(settings: KafkaClientSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin): bootstrap servers, TLS, SASL."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.uses_sasl:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def faststream_security(settings: KafkaClientSettings) -> BaseSecurity | None:
    """The same connection settings as a FastStream `KafkaBroker(security=...)` value; None for PLAINTEXT."""
    context = ssl_context(settings)
    if settings.uses_sasl:
        return _SASL_SECURITY[settings.kafka_sasl_mechanism](
            settings.kafka_sasl_username,
            settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            use_ssl=settings.uses_tls,
        )
    if context is not None:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def kafka_options_from_environment(**overrides: Any) -> dict[str, Any]:
    """aiokafka options from the environment (and mounted files), for tools that are not services."""
    return aiokafka_options(KafkaClientSettings(**overrides))


class KafkaAccessRefused(RuntimeError):
    """Kafka answered but refused these credentials or this TLS set-up: waiting will not help."""


_REFUSALS = (SaslAuthenticationFailed, UnsupportedSaslMechanismError, IllegalSaslStateError, AuthenticationFailedError)


async def check_access(options: dict[str, Any], timeout_seconds: float = 10) -> None:
    """Connects and authenticates to a bootstrap server with `options` (from `aiokafka_options`).

    Returns once one server accepted; raises `KafkaAccessRefused` with one clear reason when a server
    refuses the credentials or its certificate is not trusted; re-raises the last transient error
    (nothing listening, a timeout) when no server could be reached.
    """
    connection_options = {key: value for key, value in options.items() if key != "bootstrap_servers"}
    last_error: BaseException | None = None
    for server in options["bootstrap_servers"].split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            connection = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout_seconds * 1000), **connection_options),
                timeout_seconds,
            )
        except _REFUSALS as error:
            raise KafkaAccessRefused(f"Kafka at {server} refused the credentials: {error}") from None
        except ssl.SSLCertVerificationError as error:
            raise KafkaAccessRefused(
                f"Kafka at {server} presented a certificate that is not trusted ({error.verify_message}); "
                "set KAFKA_SSL_CA_FILE to the CA that signed it"
            ) from None
        except ssl.SSLError as error:
            raise KafkaAccessRefused(f"TLS with Kafka at {server} failed ({error.reason}); is it a TLS listener?") from None
        except (OSError, TimeoutError, KafkaError) as error:
            last_error = error
            continue
        connection.close()
        return
    assert last_error is not None
    raise last_error


class RememberingPartitioner:
    """aiokafka's default partitioner (the Java client's: murmur2 of the key, modulo the topic's partitions), keeping
    each key's hash. aiokafka's murmur2 is pure Python (~10–20 µs a key) and a service sends several messages with one
    key (one order's) within seconds. At most `size` keys are kept; then it starts over."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return _DEFAULT_PARTITIONER(key, all_partitions, available)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._size:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]
