"""The Helm chart: linted, rendered with default and external-Kafka values, every manifest validated offline.

Helm is built from the Go module proxy into the cache (once); `kubernetes-validate` checks each rendered
manifest against the Kubernetes schemas. ServiceMonitor is a CRD those schemas do not hold, so it is
checked here by hand against the Service it selects. The rendered ConfigMap and Secret of each service
are loaded by that service's own settings class, so a misspelt or mistyped setting fails here.
"""

import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ordermesh_devstack.helm import ensure_helm
from ordermesh_devstack.kafka_tls import make_tls_material
from ordermesh_devstack.settings_doc import SERVICES, service_settings_class, settings_of
from ordermesh_servicekit.kafka_clients import aiokafka_options

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "ordermesh"
EXTERNAL = ROOT / "deploy" / "helm" / "examples" / "external-kafka.yaml"
KUBERNETES = "1.36.0"
CHART_ONLY = {"ORDERMESH_SECRETS_DIR", "SERVICE", "ORDERMESH_TOPIC_PARTITIONS", "ORDERMESH_TOPIC_REPLICATION_FACTOR"}


def _helm(*args: str) -> str:
    done = subprocess.run([str(ensure_helm()), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tls_material(tmp_path_factory.mktemp("ca")).ca_file


def _render(*values: str) -> list[dict[str, Any]]:
    _helm("lint", "--strict", str(CHART), *values)
    text = _helm("template", "shop", str(CHART), "--kube-version", KUBERNETES, *values)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _validate(manifests: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """Validates every manifest Kubernetes knows (strictly); returns the count and the custom resources."""
    validated, custom = 0, []
    for manifest in manifests:
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            custom.append(manifest)
            continue
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        validated += 1
    return validated, custom


def _by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def _settings_from(manifests, service: str, secrets_dir: Path, monkeypatch, extra_files: dict[str, str]):
    """The service's settings class loaded from the rendered ConfigMap (variables) and Secret (files)."""
    name = f"shop-ordermesh-{service}"
    config = _by_kind(manifests, "ConfigMap")[name]["data"]
    secret = _by_kind(manifests, "Secret")[name]["stringData"]
    secrets_dir.mkdir()
    for key, value in {**secret, **extra_files}.items():
        (secrets_dir / key).write_text(value)
    for variable in list(os.environ):
        if variable.startswith(("ORDERMESH_", "KAFKA_", "DATABASE_URL", "SERVICE")):
            monkeypatch.delenv(variable)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ORDERMESH_SECRETS_DIR", str(secrets_dir))
    cls = service_settings_class(service)
    provided = set(config) | set(secret) | set(extra_files)
    known = {n for s in settings_of(cls) for n in (s.variable, *s.aliases)}
    assert provided - known - CHART_ONLY == set(), f"{service}: the chart sets what the service does not read"
    missing = [s.variable for s in settings_of(cls) if not ({s.variable, *s.aliases} & provided)]
    assert missing == [], f"{service}: the chart lacks {missing}: add them to deploy/helm/ordermesh/values.yaml (settings, or secrets when secret)"
    return cls, config, secret


def test_the_chart_with_default_values_renders_only_valid_manifests_a_deployment_per_service(tmp_path, monkeypatch):
    manifests = _render()
    validated, custom = _validate(manifests)
    assert custom == [] and validated == len(manifests) == 36
    deployments = _by_kind(manifests, "Deployment")
    jobs = _by_kind(manifests, "Job")
    assert len(_by_kind(manifests, "PodDisruptionBudget")) == len(_by_kind(manifests, "Service")) == 6
    for service in SERVICES:
        name = f"shop-ordermesh-{service}"
        spec = deployments[name]["spec"]
        assert spec["replicas"] == 2
        pod = spec["template"]["spec"]
        [container] = pod["containers"]
        assert container["image"] == f"ghcr.io/ordermesh/ordermesh-{service}:0.1.0"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"name": "secrets", "mountPath": "/etc/ordermesh/secrets", "readOnly": True} in container["volumeMounts"]
        job = jobs[f"{name}-init"]
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["ordermesh-init"]
        for kind in ("ConfigMap", "Secret"):
            hook = _by_kind(manifests, kind)[name]["metadata"]["annotations"]
            assert int(hook["helm.sh/hook-weight"]) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
        cls, config, _ = _settings_from(manifests, service, tmp_path / service, monkeypatch, {})
        settings = cls()
        assert settings.http_port == 8000 and settings.http_host == "0.0.0.0"
        assert settings.database_url.get_secret_value().startswith(f"postgresql://ordermesh_{service}:")
        assert settings.kafka_security_protocol == "PLAINTEXT"
    print(f"default values: {validated} manifests validated against Kubernetes {KUBERNETES}")


def test_the_chart_for_a_managed_kafka_with_sasl_ssl_and_a_private_ca_renders_valid_manifests(ca_file, tmp_path, monkeypatch):
    manifests = _render("-f", str(EXTERNAL), "--set-file", f"kafka.caCert={ca_file}")
    validated, monitors = _validate(manifests)
    assert validated == 37  # 36 as by default, plus the CA's Secret
    services = _by_kind(manifests, "Service")
    assert len(monitors) == 6
    for monitor in monitors:
        assert monitor["kind"] == "ServiceMonitor" and monitor["metadata"]["labels"]["release"] == "prometheus"
        selected = [s for s in services.values() if monitor["spec"]["selector"]["matchLabels"].items() <= s["spec"]["selector"].items()]
        assert [s["metadata"]["name"] for s in selected] == [monitor["metadata"]["name"]]
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics" and endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    ca_secret = _by_kind(manifests, "Secret")["shop-ordermesh-kafka-ca"]
    assert ca_secret["stringData"]["ca.pem"] == ca_file.read_text()
    for service in SERVICES:
        pod = _by_kind(manifests, "Deployment")[f"shop-ordermesh-{service}"]["spec"]["template"]["spec"]
        [secrets] = [v for v in pod["volumes"] if v["name"] == "secrets"]
        sources = [s["secret"] for s in secrets["projected"]["sources"]]
        assert {"name": f"ordermesh-{service}-db", "items": [{"key": "DATABASE_URL", "path": "DATABASE_URL"}]} in sources
        assert {"name": "ordermesh-kafka", "items": [{"key": "password", "path": "KAFKA_SASL_PASSWORD"}]} in sources
        # What the existing Secrets would hold, mounted beside the chart's; the CA at the path the chart names.
        cls, config, secret = _settings_from(
            manifests, service, tmp_path / service, monkeypatch,
            {"DATABASE_URL": f"postgresql://ordermesh_{service}:pw@db.example.com/ordermesh_{service}", "KAFKA_SASL_PASSWORD": "from-the-secret"},
        )
        assert "DATABASE_URL" not in secret and "KAFKA_SASL_PASSWORD" not in secret
        assert config["KAFKA_SSL_CA_FILE"] == "/etc/ordermesh/kafka-ca/ca.pem"
        monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(ca_file))
        settings = cls()
        options = aiokafka_options(settings)
        assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
        assert options["sasl_plain_password"] == "from-the-secret" and options["ssl_context"] is not None
        assert settings.database_url.get_secret_value().endswith(f"/ordermesh_{service}")
    print(f"external Kafka values: {validated} manifests validated, {len(monitors)} ServiceMonitors checked by hand")
