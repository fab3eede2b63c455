"""The shipped Prometheus alert rules and Grafana dashboard name only metrics (and labels) the running services expose."""

import json
import re
from pathlib import Path

import httpx
import yaml

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.stack import SERVICES
from support import publish_raw

OBSERVABILITY = Path(__file__).resolve().parent.parent / "deploy" / "observability"
PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes itself for every scrape target."""
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\[[^\]]*\])?")
_PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate", "histogram_quantile", "topk",
    "bottomk", "le", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
}


def rule_expressions() -> list[str]:
    rules = yaml.safe_load((OBSERVABILITY / "prometheus-rules.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def referenced(expression: str) -> list[tuple[str, set[str]]]:
    """The series an expression selects, each with the label names it matches on (grouping labels excluded)."""
    found = []
    without_grouping = re.sub(r"\b(by|without)\s*\([^)]*\)", " ", expression)
    for match in _NAME.finditer(without_grouping):
        name, matchers = match.group(1), match.group(2) or ""
        end = match.end()
        if name in _PROMQL_WORDS or re.match(r"^\d", name) or without_grouping[end:end + 1] == "(":
            continue
        labels = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", matchers))
        found.append((name, labels))
    return found


def exposed(stack) -> dict[str, set[str]]:
    """Every series name the five services expose on /metrics, with the label names seen on it."""
    series: dict[str, set[str]] = {}
    for service in SERVICES:
        text = httpx.get(f"http://127.0.0.1:{stack.processes[service].http_port}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                names = {"counter": [name, f"{name}_total"], "histogram": [f"{name}_bucket", f"{name}_sum", f"{name}_count"]}
                for each in names.get(kind, [name]):
                    series.setdefault(each, set())
            elif line and not line.startswith("#"):
                name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
                series.setdefault(name, set()).update(re.findall(r'(\w+)="', line.split("}")[0] if "{" in line else ""))
    return series


def test_expressions_are_read_with_their_names_and_matched_labels():
    assert referenced('sum by (topic) (increase(ordermesh_messages_total{outcome="dead_lettered"}[15m])) > 0') == [
        ("ordermesh_messages_total", {"outcome"})
    ]
    assert referenced("histogram_quantile(0.95, sum by (le, type) (rate(ordermesh_handle_seconds_bucket[5m])))") == [
        ("ordermesh_handle_seconds_bucket", set())
    ]
    assert referenced('up{job=~"ordermesh.*"} == 0') == [("up", {"job"})]


async def test_every_metric_in_the_alert_rules_and_the_dashboard_is_exposed_by_the_running_services(stack, recorder):
    order = demo_order(990_201)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)
    series = exposed(stack)

    expressions = rule_expressions() + dashboard_expressions()
    assert len(expressions) >= 15
    missing = []
    for expression in expressions:
        for name, labels in referenced(expression):
            if name in PROMETHEUS_OWN:
                continue
            if name not in series:
                missing.append(f"{name} (in {expression})")
            elif labels - series[name] - {"job", "instance"}:
                missing.append(f"{name} has no label {sorted(labels - series[name])} (in {expression})")
    assert not missing, "\n".join(missing)
