"""The table `make bench` prints: the suite beside the raw pipeline, per run and per service."""

from .stack import SERVICES


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values, in the same unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def raw_limit(kafka_rate: float, pg_rate: float, messages_per_order: float, transactions_per_order: float) -> float:
    """Orders/s the raw baselines allow for what one order costs in Kafka messages and committed transactions."""
    return min(kafka_rate / max(messages_per_order, 1e-9), pg_rate / max(transactions_per_order, 1e-9))


def _ms(values: list[float], pct: float) -> str:
    return f"{percentile(values, pct) * 1000:9.0f}"


def _run_line(label: str, run: dict) -> str:
    return (
        f"{label:<34}{run['e2e_rate']:9.1f}{run['handled_rate']:10.0f}"
        f"{_ms(run['accept_latency'], 50)}{_ms(run['accept_latency'], 99)}"
        f"{_ms(run['complete_latency'], 50)}{_ms(run['complete_latency'], 99)}"
        f"   {run['completed']}/{run['offered']}, {run['dead_letters']} DL"
    )


def report(results: dict) -> str:
    """The bench's table from what `bench.run` measured (missing runs are left out)."""
    import psutil

    args = results["args"]
    runs = [(key, label) for key, label in (
        ("throughput", f"suite, {args.orders} offered at {args.rate:.0f}/s"),
        ("steady", f"suite, {args.steady_orders} at {args.steady_rate:.0f}/s"),
        ("replicas", f"suite, {args.replicas} replicas, {args.replica_orders} at {args.rate:.0f}/s"),
    ) if key in results]
    lines = [
        f"ordermesh bench — {psutil.cpu_count()} cores; load average 1/5/15 min at start {results['load_start']}, "
        + ", ".join(f"after {key} {results['load_' + key]}" for key in ("raw", *(k for k, _ in runs), "intake")
                    if "load_" + key in results),
        "",
        f"{'run':<34}{'orders/s':>9}{'handled/s':>10}{'acc p50':>9}{'acc p99':>9}{'done p50':>9}{'done p99':>9}   completed",
    ]
    raw = results.get("raw")
    if raw:
        lines.append(
            f"{'raw pipeline (aiokafka+asyncpg)':<34}{raw['orders'] / raw['window']:9.1f}{raw['rate']:10.0f}"
            f"{'':36}   {raw['handled']}/{raw['expected']} messages"
        )
    for key, label in runs:
        lines.append(_run_line(label, results[key]))
    lines.append("  (handled/s: records the five services' consumer groups committed per second; latencies in ms)")
    lines.append("")
    for key, label in runs:
        run = results[key]
        ratio = f"; {run['handled_rate'] / raw['rate']:.1%} of the raw pipeline's handled/s" if raw else ""
        lines.append(
            f"{key:<11} per order: {run['consumed_per_order']:.1f} messages consumed, {run['messages_per_order']:.1f} published,"
            f" {run['transactions_per_order']:.1f} transactions committed,"
            f" {sum(run['cpu'].values()) * 1000 / max(run['completed'], 1):.0f} CPU ms over the five services{ratio}"
        )
    for key, _label in runs:
        run = results[key]
        if "infrastructure_cpu" in run:
            per_order = {name: seconds * 1000 / max(run["completed"], 1) for name, seconds in run["infrastructure_cpu"].items()}
            lines.append(
                f"{key:<11} the machine's other CPU ms per order: "
                + ", ".join(f"{name} {ms:.1f}" for name, ms in per_order.items())
            )
    if raw:
        lines.append(
            f"raw        per order: {raw['consumed_per_order']} messages consumed, 26 published (the suite's card order);"
            f" {raw['cpu_ms_per_order']:.1f} CPU ms per order over its five processes"
        )
    lines += ["", f"{'service':<10}" + "".join(f"{key + ' CPU ms/order':>24}{'peak RSS MiB':>14}" for key, _ in runs)]
    for name in SERVICES:
        cells = "".join(
            f"{results[key]['cpu'][name] * 1000 / max(results[key]['completed'], 1):24.1f}"
            f"{results[key]['peak_rss'][name] / 2**20:14.0f}"
            for key, _ in runs
        )
        lines.append(f"{name:<10}{cells}")
    if "throughput" in results:
        run = results["throughput"]
        limit = raw_limit(results["kafka_rate"], results["pg_rate"], run["messages_per_order"], run["transactions_per_order"])
        lines += [
            "",
            f"payments: {results['gateway_calls'][1]:.1f} gateway calls/s ({results['gateway_calls'][0]} authorizations and captures);"
            f" notify: {results['mails'][1]:.1f} mails/s ({results['mails'][0]} over real SMTP)",
            f"raw baselines: aiokafka produce→consume {results['kafka_rate']:.0f} messages/s (1 KiB, acks=all); asyncpg"
            f" single-row transactions {results['pg_rate']:.0f}/s; at the suite's cost per order they allow ~{limit:.0f} orders/s",
        ]
    if "intake" in results:
        intake = results["intake"]
        lines += [
            "",
            f"intake alone ({args.intake_orders} orders at once, only orders running): {intake['rate']:.1f} orders/s"
            f" ({intake['accepted']}/{args.intake_orders} in {intake['window']:.1f} s, {intake['dead_letters']} DL);"
            f" acceptance p50/p99 ms {_ms(intake['latency'], 50).strip()}/{_ms(intake['latency'], 99).strip()};"
            f" {intake['cpu'] * 1000 / max(intake['accepted'], 1):.1f} CPU ms/order; peak RSS {intake['peak_rss'] / 2**20:.0f} MiB;"
            f" {intake['transactions_per_order']:.1f} transactions/order",
        ]
    return "\n".join(lines)
