"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) run from the Kafka jars."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from ordermesh_servicekit.provision import create_topics

from .kafka_tls import SaslSslListener, TlsMaterial, listener_properties, make_tls_material, scram_format_arguments
from .processes import free_port, log_tail, run_blocking, stop_process_group

logger = logging.getLogger(__name__)

DEFAULT_KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.25.2"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.7.1"

_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ordermesh</groupId><artifactId>kafka-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""
_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRefs = stdout
rootLogger.appenderRef.stdout.ref = STDOUT
logger.server.name = kafka.server
logger.server.level = INFO
"""


def cache_root() -> Path:
    """Return the ordermesh cache directory (``$ORDERMESH_CACHE`` or ``~/.cache/ordermesh``)."""
    return Path(os.environ.get("ORDERMESH_CACHE") or Path.home() / ".cache" / "ordermesh")


def ensure_kafka_jars(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """Resolve the Kafka broker jars with Maven into the cache and return the ``libs`` directory.

    The result is keyed by version and reused once a marker file records it as complete.
    """
    base = cache_root() / f"kafka-{version}"
    libs = base / "libs"
    marker = base / "COMPLETE"
    if marker.exists():
        return libs
    base.mkdir(parents=True, exist_ok=True)
    # A lock so that parallel test workers do not resolve into the same directory at once.
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is not installed; it is needed to fetch the Kafka jars")
        staging = base / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix="ordermesh-kafka-pom-") as work:
            (Path(work) / "pom.xml").write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
            logger.info("resolving Kafka %s jars with Maven into %s", version, libs)
            started = time.monotonic()
            proc = subprocess.run(
                ["mvn", "-B", "-q", f"{DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={staging}"],
                cwd=work,
                capture_output=True,
                text=True,
            )
        if proc.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
            output = (proc.stdout + proc.stderr)[-4000:]
            raise RuntimeError(f"could not resolve Kafka {version} jars with Maven (exit {proc.returncode}):\n{output}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(f"kafka {version}, log4j {LOG4J_VERSION}\n")
        logger.info("Kafka %s jars ready in %.1fs", version, time.monotonic() - started)
    return libs


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _random_cluster_id() -> str:
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        # A leading '-' would be read as a command-line option by StorageTool.
        if not cluster_id.startswith("-"):
            return cluster_id


async def _port_accepts(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _probe(bootstrap: str, **security: Any) -> list[str]:
    # A plain connect first, so the admin client does not log a connection error per attempt.
    if not await _port_accepts(bootstrap):
        raise ConnectionRefusedError(f"nothing listens on {bootstrap} yet")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security)
    try:
        await asyncio.wait_for(admin.start(), 10)
        return await asyncio.wait_for(admin.list_topics(), 10)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def wait_until_ready(bootstrap: str, timeout: float = 60, **security: Any) -> None:
    """Wait until the broker at ``bootstrap`` answers a metadata request; raise TimeoutError otherwise.

    ``security``: aiokafka's TLS/SASL keyword arguments (see ``ordermesh_servicekit.kafka_clients``).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            await _probe(bootstrap, **security)
            return
        except (TimeoutError, KafkaError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {exc!r}") from exc
        await asyncio.sleep(0.5)


async def ensure_topics(bootstrap: str, topics: list[str], partitions: int, **security: Any) -> None:
    """Create those of ``topics`` that do not exist yet, with ``partitions`` partitions and replication 1."""
    created = await create_topics({"bootstrap_servers": bootstrap, **security}, topics, partitions, 1)
    if created:
        logger.info("created Kafka topics %s with %d partitions", created, partitions)


class LocalKafka:
    """A single-node KRaft Kafka broker running as a child process, with its data in ``data_dir``.

    With ``sasl_ssl``, the broker also has a SASL_SSL listener (``secure_bootstrap``) with a CA and
    certificate made at start (``tls``); the PLAINTEXT listener stays for the broker itself.
    """

    def __init__(
        self,
        data_dir: Path,
        partitions: int = 6,
        version: str = DEFAULT_KAFKA_VERSION,
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.partitions = partitions
        self.version = version
        self.sasl_ssl = sasl_ssl
        self.bootstrap: str | None = None
        self.secure_bootstrap: str | None = None
        self.tls: TlsMaterial | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs, else None."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        """The file that receives the broker's stdout/stderr (its log4j console output)."""
        return self.data_dir / "kafka.log"

    def start(self, timeout: float = 300) -> str:
        """Format the storage if needed, start the broker, wait until it serves metadata; return bootstrap servers."""
        if self.pid is not None:
            assert self.bootstrap is not None
            return self.bootstrap
        started = time.monotonic()
        libs = ensure_kafka_jars(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.data_dir / "kraft-logs"
        port, controller_port, secure_port = self._ports(formatted=(log_dir / "meta.properties").exists())
        if self.sasl_ssl is not None:
            self.tls = make_tls_material(self.data_dir / "tls")
        properties = self.data_dir / "server.properties"
        properties.write_text(self._server_properties(port, controller_port, secure_port, log_dir))
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2)
        java = self._java()
        classpath = f"{libs}/*"
        common = [java, f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]

        if not (log_dir / "meta.properties").exists():
            fmt = subprocess.run(
                [*common, "kafka.tools.StorageTool", "format", "--standalone",
                 "-t", _random_cluster_id(), "-c", str(properties),
                 *(scram_format_arguments(self.sasl_ssl) if self.sasl_ssl else [])],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if fmt.returncode != 0:
                raise RuntimeError(f"kafka-storage format failed (exit {fmt.returncode}):\n{fmt.stdout}{fmt.stderr}")

        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                # C1 only: a young broker's C2 compilations took 40-45% of its CPU through a whole bench on 2 cores
                # (the compile queue never drained under load); C1's code served the same requests in the same time.
                [java, "-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                 f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath, "kafka.Kafka", str(properties)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        bootstrap = f"127.0.0.1:{port}"
        try:
            run_blocking(self._wait_ready(bootstrap, timeout - (time.monotonic() - started)))
        except BaseException:
            self.stop()
            raise
        self.bootstrap = bootstrap
        if self.sasl_ssl is not None:
            self.secure_bootstrap = f"127.0.0.1:{secure_port}"
        logger.info("Kafka ready at %s (pid %s) in %.1fs", bootstrap, self._proc.pid, time.monotonic() - started)
        return bootstrap

    def stop(self, timeout: float = 20) -> None:
        """Stop the broker: SIGTERM to its process group, then SIGKILL after ``timeout`` seconds. Idempotent."""
        proc, self._proc = self._proc, None
        self.bootstrap = self.secure_bootstrap = None
        if proc is None:
            return
        stop_process_group(proc, first_signal=signal.SIGTERM, timeout=timeout, what="Kafka")

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _wait_ready(self, bootstrap: str, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited early with code {self._proc.returncode}; log tail ({self.log_path}):\n"
                    + log_tail(self.log_path)
                )
            try:
                await _probe(bootstrap)
                return
            except (TimeoutError, KafkaError, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"Kafka at {bootstrap} not ready after {timeout:.0f}s ({exc!r}); log tail:\n"
                        + log_tail(self.log_path)
                    ) from exc
            await asyncio.sleep(0.5)

    def _ports(self, formatted: bool) -> tuple[int, int, int]:
        # The controller endpoint is recorded in the quorum's voter set at format time, so a restart
        # of formatted storage reuses the ports it was started with.
        saved = self.data_dir / "ports.json"
        if formatted and saved.exists():
            ports = json.loads(saved.read_text())
            port, controller_port = int(ports["broker"]), int(ports["controller"])
            secure_port = int(ports.get("sasl_ssl") or free_port())
            if all(_port_is_free(p) for p in (port, controller_port, secure_port)):
                return port, controller_port, secure_port
            raise RuntimeError(f"Kafka ports {port}/{controller_port}/{secure_port} recorded in {saved} are in use")
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        port, controller_port, secure_port = sorted(ports)
        saved.write_text(json.dumps({"broker": port, "controller": controller_port, "sasl_ssl": secure_port}))
        return port, controller_port, secure_port

    def _server_properties(self, port: int, controller_port: int, secure_port: int, log_dir: Path) -> str:
        listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
        if self.sasl_ssl is not None:
            listeners += f",SASL_SSL://127.0.0.1:{secure_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            "log.dirs": str(log_dir),
            "num.partitions": str(self.partitions),
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.cleaner.dedupe.buffer.size": "33554432",
        }
        if self.sasl_ssl is not None:
            assert self.tls is not None
            settings.update(listener_properties(self.sasl_ssl, self.tls))
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    @staticmethod
    def _java() -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java is not installed (Java 17+ is needed to run Kafka)")
        return java
