"""Starts the whole suite on one machine: Kafka, PostgreSQL, the outside-world sandboxes and the five services."""

import asyncio
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ordermesh_contracts.topics import all_topics_with_dead_letters
from ordermesh_servicekit.kafka_clients import KafkaClientSettings, aiokafka_options

from .kafka import LocalKafka, ensure_topics, wait_until_ready
from .kafka_tls import SaslSslListener
from .localstripe import TEST_API_KEY, LocalStripe
from .postgres import LocalPostgres, provision_service_databases
from .processes import free_port, stop_process_group

SERVICES = ("orders", "payments", "shipping", "points", "notify")
CONSOLE = "console"
SHOPIFY_DEMO_DOMAIN = "ordermesh-demo.myshopify.com"
DEMO_SKUS = tuple(f"SKU-{n:03d}" for n in range(1, 21))
log = logging.getLogger(__name__)


@dataclass
class ManagedProcess:
    """A child process in its own process group, logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    http_port: int | None = None
    process: subprocess.Popen | None = None

    def start(self) -> None:
        """Starts (or restarts) the process."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def signal(self, signum: int) -> None:
        """Sends a signal to the process's whole group."""
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL to the whole group after `timeout`."""
        if self.process:
            stop_process_group(self.process, first_signal=signal.SIGTERM, timeout=timeout, what=self.name)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        self.signal(signal.SIGKILL)
        if self.process:
            self.process.wait(5)

    @property
    def alive(self) -> bool:
        """Whether it runs."""
        return bool(self.process and self.process.poll() is None)


@dataclass
class StackConfig:
    """How to run the local suite."""

    run_dir: Path
    partitions: int = int(os.environ.get("ORDERMESH_PARTITIONS", "2"))
    """Partitions of each topic. Two: a local stack runs at most two replicas of a service, and every partition a
    consumer holds costs CPU on each of its fetches, and every partition a relay writes to splits its sends into
    smaller batches (six instead of two: a third more CPU per order, see the README's sizing note)."""
    ship_delay_seconds: float = 0.3
    gateway_timeout_delay_seconds: float = 15.0
    """How long the sandbox gateway takes to answer a tok_timeout card: longer than payments' 10 s gateway timeout,
    so the call times out and is retried with the same key, but short enough not to hold a partition for a minute."""
    payments_check_seconds: float | None = None
    """How often payments looks for overdue and expiring payments (its own default when None)."""
    stock_per_sku: int = 1_000_000
    log_level: str = "INFO"
    kafka_sasl_ssl: str | None = None
    """Run the local broker with a SASL_SSL listener and connect every client through it with this
    SASL mechanism ("SCRAM-SHA-512" or "PLAIN"); None: plain connections."""
    replicas: int = 1
    """Replicas of every service. The first of a service is named like the service ('payments'), the others
    'payments-2', 'payments-3'...; each has its own HTTP port and a stable instance id ('payments-1', 'payments-2')."""
    static_membership: bool = True
    """Give each replica its instance id as ORDERMESH_INSTANCE_ID (Kafka static group membership)."""
    service_env: dict[str, str] = field(default_factory=dict)
    """Extra environment for every service (e.g. consumer timings for a measurement)."""


@dataclass
class LocalStack:
    """The running suite: where everything is, and handles to stop, kill and restart parts of it."""

    config: StackConfig
    bootstrap: str = ""
    admin_dsn: str = ""
    service_dsns: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    maildir: Path = Path()
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    shopify_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    payment_callback_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    console_admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    warehouse_callback_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    stripe_api_base: str = ""
    kafka_env: dict[str, str] = field(default_factory=dict)
    """Kafka security variables given to every service and tool (empty for a plain local broker)."""
    kafka_security: dict = field(default_factory=dict)
    """The same as aiokafka keyword arguments (TLS context, SASL), for clients made in this process."""
    _kafka: LocalKafka | None = None
    _localstripe: LocalStripe | None = None
    _postgres: LocalPostgres | None = None

    async def start(self) -> "LocalStack":
        """Starts everything and returns once every service answers /readyz."""
        run_dir = self.config.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        if self.bootstrap:
            self.kafka_security = _security_only(aiokafka_options(KafkaClientSettings()))
        else:
            await self._start_kafka()
        await wait_until_ready(self.bootstrap, timeout=60, **self.kafka_security)
        self.admin_dsn = os.environ.get("DATABASE_URL", "")
        if not self.admin_dsn:
            self._postgres = LocalPostgres(run_dir / "postgres")
            self.admin_dsn = await asyncio.to_thread(self._postgres.start)
        passwords = {name: secrets.token_urlsafe(18) for name in (*SERVICES, CONSOLE)}
        self.service_dsns = await provision_service_databases(self.admin_dsn, passwords)
        await ensure_topics(self.bootstrap, all_topics_with_dead_letters(), self.config.partitions, **self.kafka_security)
        log.info("infrastructure ready in %.1f s", time.monotonic() - started)
        self._start_sandboxes()
        self._localstripe = LocalStripe(run_dir / "localstripe")
        self.stripe_api_base = await asyncio.to_thread(self._localstripe.start)
        self._start_services()
        self._start_console()
        await self.wait_ready((*self.service_processes(), CONSOLE), timeout=180)
        await self.set_stock({sku: self.config.stock_per_sku for sku in DEMO_SKUS})
        (run_dir / "stack.json").write_text(json.dumps(self.describe(), indent=2))
        (run_dir / "ops.env").write_text(
            f"KAFKA_BOOTSTRAP_SERVERS={self.bootstrap}\nORDERMESH_API_TOKEN={self.api_token}\n"
            + "".join(f"{name}={value}\n" for name, value in self.kafka_env.items())
            + "".join(f"ORDERMESH_{n.upper()}_URL=http://127.0.0.1:{self.processes[n].http_port}\n" for n in (*SERVICES, CONSOLE))
        )
        (run_dir / "ops.env").chmod(0o600)
        admin_password = os.open(run_dir / "console-admin-password", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(admin_password, "w") as out:
            out.write(self.console_admin_password + "\n")
        log.info("suite ready in %.1f s", time.monotonic() - started)
        return self

    async def _start_kafka(self) -> None:
        mechanism = self.config.kafka_sasl_ssl
        listener = SaslSslListener() if mechanism else None
        self._kafka = LocalKafka(self.config.run_dir / "kafka", partitions=self.config.partitions, sasl_ssl=listener)
        self.bootstrap = await asyncio.to_thread(self._kafka.start)
        if listener is None:
            return
        assert self._kafka.secure_bootstrap and self._kafka.tls
        users = listener.plain_users if mechanism == "PLAIN" else listener.scram_users
        (user, password), *_ = users.items()
        secrets_dir = self.config.run_dir / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        (secrets_dir / "KAFKA_SASL_PASSWORD").write_text(password + "\n")
        self.bootstrap = self._kafka.secure_bootstrap
        self.kafka_env = {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD_FILE": str(secrets_dir / "KAFKA_SASL_PASSWORD"),
            "KAFKA_SSL_CA_FILE": str(self._kafka.tls.ca_file),
        }
        self.kafka_security = _security_only(
            aiokafka_options(
                KafkaClientSettings(
                    kafka_bootstrap_servers=self.bootstrap,
                    kafka_security_protocol="SASL_SSL",
                    kafka_sasl_mechanism=mechanism,
                    kafka_sasl_username=user,
                    kafka_sasl_password=password,
                    kafka_ssl_ca_file=str(self._kafka.tls.ca_file),
                )
            )
        )

    @property
    def kafka_options(self) -> dict:
        """aiokafka keyword arguments to reach the suite's Kafka (bootstrap servers, TLS, SASL)."""
        return {"bootstrap_servers": self.bootstrap, **self.kafka_security}

    def describe(self) -> dict:
        """Where things are (no secrets)."""
        return {
            "kafka_bootstrap_servers": self.bootstrap,
            "services": {n: p.http_port for n, p in self.processes.items() if p.http_port},
            "stripe_api_base": self.stripe_api_base,
            "maildir": str(self.maildir),
            "pids": {n: p.process.pid for n, p in self.processes.items() if p.process},
            "kafka_pid": self._kafka.pid if self._kafka else None,
            "postgres_pid": self._postgres.pid if self._postgres else None,
        }

    def _start_sandboxes(self) -> None:
        run_dir = self.config.run_dir
        self.maildir = run_dir / "maildir"
        python = sys.executable
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "WAREHOUSE_CALLBACK_SECRET": self.warehouse_callback_secret}
        ports = {name: free_port() for name in ("gateway", "warehouse", "smtp")}
        sandboxes = {
            "gateway": [
                python, "-m", "ordermesh_devstack.sandboxes.payment_gateway", "--port", str(ports["gateway"]),
                "--timeout-delay", str(self.config.gateway_timeout_delay_seconds),
            ],
            "warehouse": [
                python, "-m", "ordermesh_devstack.sandboxes.warehouse",
                "--port", str(ports["warehouse"]), "--ship-delay", str(self.config.ship_delay_seconds),
                "--deliver-delay", str(self.config.ship_delay_seconds),
            ],
            "smtp": [
                python, "-m", "ordermesh_devstack.sandboxes.smtp_sink",
                "--port", str(ports["smtp"]), "--maildir", str(self.maildir), "--reject-recipients",
            ],
        }
        for name, argv in sandboxes.items():
            # The stack's log level, as the services get it: the sandboxes logged every request at INFO even in the
            # bench (WARNING), about a sixth of the warehouse's CPU.
            argv = [*argv[:3], "--log-level", self.config.log_level.lower(), *argv[3:]]
            process = ManagedProcess(name, argv, env, run_dir / "logs" / f"{name}.log", ports[name])
            process.start()
            self.processes[name] = process
        self._sandbox_ports = ports

    def _service_env(self, name: str, port: int, instance_id: str) -> dict[str, str]:
        env = {
            **os.environ,
            **self.config.service_env,
            "PYTHONUNBUFFERED": "1",
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            **self.kafka_env,
            "DATABASE_URL": self.service_dsns[name],
            "ORDERMESH_HTTP_PORT": str(port),
            "ORDERMESH_LOG_LEVEL": self.config.log_level,
            "ORDERMESH_API_TOKEN": self.api_token,
        }
        if self.config.static_membership:
            env["ORDERMESH_INSTANCE_ID"] = instance_id
        if name == "orders":
            env["ORDERMESH_SHOPIFY_SHOPS"] = json.dumps(
                {SHOPIFY_DEMO_DOMAIN: {"shop_id": "demo-shop", "secret": self.shopify_secret}}
            )
        if name == "payments":
            env["ORDERMESH_GATEWAY_URL"] = f"http://127.0.0.1:{self._sandbox_ports['gateway']}"
            env["ORDERMESH_PAYMENT_CALLBACK_SECRET"] = self.payment_callback_secret
            env["ORDERMESH_STRIPE_API_KEY"] = TEST_API_KEY
            env["ORDERMESH_STRIPE_API_BASE"] = self.stripe_api_base
            if self.config.payments_check_seconds is not None:
                env["ORDERMESH_CHECK_INTERVAL_SECONDS"] = str(self.config.payments_check_seconds)
        if name == "shipping":
            env["ORDERMESH_WAREHOUSE_URL"] = f"http://127.0.0.1:{self._sandbox_ports['warehouse']}"
            env["ORDERMESH_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
            env["ORDERMESH_WAREHOUSE_CALLBACK_SECRET"] = self.warehouse_callback_secret
            env["ORDERMESH_ADMIN_TOKEN"] = self.admin_token
        if name == "notify":
            env["ORDERMESH_SMTP_HOST"] = "127.0.0.1"
            env["ORDERMESH_SMTP_PORT"] = str(self._sandbox_ports["smtp"])
        return env

    def _start_services(self) -> None:
        for name in SERVICES:
            for _ in range(self.config.replicas):
                self.add_replica(name)

    def add_replica(self, service: str) -> str:
        """Starts one more replica of `service` (not waiting for it); returns its process name."""
        number = len(self.replica_names(service)) + 1
        process_name = service if number == 1 else f"{service}-{number}"
        port = free_port()
        argv = [sys.executable, "-m", f"ordermesh_{service}"]
        env = self._service_env(service, port, f"{service}-{number}")
        process = ManagedProcess(process_name, argv, env, self.config.run_dir / "logs" / f"{process_name}.log", port)
        process.start()
        self.processes[process_name] = process
        return process_name

    def replica_names(self, service: str) -> list[str]:
        """The process names of every replica of `service` started so far, the first one first."""
        return [n for n in self.processes if n == service or (n.startswith(f"{service}-") and n[len(service) + 1:].isdigit())]

    def service_processes(self) -> list[str]:
        """The process names of every service replica."""
        return [n for service in SERVICES for n in self.replica_names(service)]

    @property
    def console_url(self) -> str:
        """Where the web console answers (log in as `admin` with `console_admin_password`)."""
        return f"http://127.0.0.1:{self.processes[CONSOLE].http_port}"

    def _start_console(self) -> None:
        port = free_port()
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            **self.kafka_env,
            "DATABASE_URL": self.service_dsns[CONSOLE],
            "ORDERMESH_HTTP_PORT": str(port),
            "ORDERMESH_LOG_LEVEL": self.config.log_level,
            "ORDERMESH_API_TOKEN": self.api_token,
            "ORDERMESH_CONSOLE_ADMIN_PASSWORD": self.console_admin_password,
            **{f"ORDERMESH_{n.upper()}_URL": f"http://127.0.0.1:{self.processes[n].http_port}" for n in SERVICES},
        }
        argv = [sys.executable, "-m", "ordermesh_console"]
        process = ManagedProcess(CONSOLE, argv, env, self.config.run_dir / "logs" / f"{CONSOLE}.log", port)
        process.start()
        self.processes[CONSOLE] = process

    async def wait_ready(self, names, timeout: float = 240) -> None:
        """Waits until each named service answers /readyz with 200."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for name in names:
                process = self.processes[name]
                while True:
                    if not process.alive:
                        raise RuntimeError(f"{name} exited; see {process.log_path}")
                    try:
                        response = await client.get(f"http://127.0.0.1:{process.http_port}/readyz")
                        if response.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} not ready after {timeout} s; see {process.log_path}")
                    await asyncio.sleep(0.2)

    async def set_stock(self, levels: dict[str, int]) -> None:
        """Sets stock levels through the shipping service's stock endpoint."""
        port = self.processes["shipping"].http_port
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.put(
                f"http://127.0.0.1:{port}/admin/stock",
                json=[{"sku": sku, "warehouse": "main", "on_hand": units} for sku, units in levels.items()],
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
            response.raise_for_status()

    def kill_service(self, name: str) -> None:
        """SIGKILLs a service (or one replica, by its process name), as a crash would."""
        self.processes[name].kill()

    async def restart_service(self, name: str) -> None:
        """Starts a stopped or killed service again and waits until it is ready."""
        self.processes[name].start()
        await self.wait_ready([name])

    def stop(self) -> None:
        """Stops services, sandboxes, Kafka and PostgreSQL; leaves no process behind."""
        for name in [CONSOLE, *self.service_processes(), "gateway", "warehouse", "smtp"]:
            if name in self.processes:
                self.processes[name].stop()
        if self._localstripe:
            self._localstripe.stop()
        if self._kafka:
            self._kafka.stop()
        if self._postgres:
            self._postgres.stop()


def _security_only(options: dict) -> dict:
    return {key: value for key, value in options.items() if key != "bootstrap_servers"}
