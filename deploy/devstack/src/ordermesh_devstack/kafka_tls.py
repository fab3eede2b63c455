"""A SASL_SSL listener for the local broker: a throwaway CA, a broker certificate for 127.0.0.1, and users.

What a managed Kafka offers (TLS with a private CA, SCRAM-SHA-512 and PLAIN users), made at start-up so
the clients' security settings are exercised against a real broker.
"""

import datetime
import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files: the CA certificate clients trust, and the broker's key and certificate chain in one file."""

    ca_file: Path
    broker_pem: Path


@dataclass
class SaslSslListener:
    """What the broker's SASL_SSL listener accepts: SCRAM-SHA-512 users (made at format time) and PLAIN users."""

    scram_users: dict[str, str] = field(default_factory=lambda: {"ordermesh": secrets.token_urlsafe(18)})
    plain_users: dict[str, str] = field(default_factory=lambda: {"ordermesh-plain": secrets.token_urlsafe(18)})


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls_material(directory: Path) -> TlsMaterial:
    """A CA and a broker certificate it signed (valid for 127.0.0.1 and localhost) under `directory`; made once."""
    material = TlsMaterial(ca_file=directory / "ca.pem", broker_pem=directory / "broker.pem")
    if material.ca_file.exists() and material.broker_pem.exists():
        return material
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("ordermesh local CA"))
        .issuer_name(_name("ordermesh local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(broker_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    material.ca_file.write_bytes(ca_cert.public_bytes(pem))
    material.broker_pem.write_bytes(
        broker_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + broker_cert.public_bytes(pem)
        + ca_cert.public_bytes(pem)
    )
    material.broker_pem.chmod(0o600)
    return material


def listener_properties(listener: SaslSslListener, material: TlsMaterial) -> dict[str, str]:
    """server.properties entries of the SASL_SSL listener (named SASL_SSL)."""
    plain_users = " ".join(f'user_{name}="{password}"' for name, password in listener.plain_users.items())
    return {
        "sasl.enabled.mechanisms": f"{SCRAM_MECHANISM},PLAIN",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "listener.name.sasl_ssl.plain.sasl.jaas.config":
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
        "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
        "listener.name.sasl_ssl.ssl.keystore.location": str(material.broker_pem),
    }


def scram_format_arguments(listener: SaslSslListener) -> list[str]:
    """`kafka-storage format` arguments that create the SCRAM users in the cluster's metadata."""
    arguments: list[str] = []
    for name, password in listener.scram_users.items():
        arguments += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
    return arguments
