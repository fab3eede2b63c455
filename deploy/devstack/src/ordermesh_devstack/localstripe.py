"""localstripe (a stateful fake of the Stripe API) as a local child process, behind a small front that adds what it lacks.

localstripe 1.15 ignores the Idempotency-Key header and accepts refunds larger than what is left on the charge;
the real Stripe API does neither. The front, a second child process, forwards everything to localstripe and adds
those two Stripe behaviours, so the Stripe adapter's tests see the semantics they rely on:

- POST with an Idempotency-Key already seen: the first answer is replayed (header ``Idempotent-Replayed: true``);
  the same key with another path or body is refused with a 400 ``idempotency_error``.
- POST /v1/refunds beyond the unrefunded amount: 400 ``amount_too_large`` (``charge_already_refunded`` when nothing
  is left).

Both listen on 127.0.0.1 only; localstripe keeps its state in memory (not in its default /tmp pickle).
"""

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .processes import free_port, log_tail, stop_process_group

logger = logging.getLogger(__name__)

TEST_API_KEY = "sk_test_ordermesh_localstripe"

# localstripe is GPL-3.0: it runs in its own interpreter and is never imported by ordermesh's code.
_SERVE_LOCALSTRIPE = """
import sys
from aiohttp import web
from localstripe.resources import store
from localstripe.server import app
store.dump_to_disk = lambda: None
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
_FORWARDED_HEADERS = ("authorization", "content-type", "stripe-version", "stripe-account", "user-agent")


class LocalStripe:
    """localstripe and its front as child processes; ``api_base`` is the front's URL while they run."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir).absolute()
        self.api_base: str | None = None
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, timeout: float = 30) -> str:
        """Starts localstripe and the front on free loopback ports, waits until the front answers; returns its URL."""
        if self.api_base is not None:
            return self.api_base
        self.run_dir.mkdir(parents=True, exist_ok=True)
        upstream_port, front_port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{upstream_port}"
        front = f"http://127.0.0.1:{front_port}"
        try:
            self._spawn("localstripe", [sys.executable, "-c", _SERVE_LOCALSTRIPE, str(upstream_port)])
            self._spawn("localstripe-front", [sys.executable, "-m", __name__, "--port", str(front_port), "--upstream", upstream])
            self._wait_ready(front, timeout)
        except BaseException:
            self.stop()
            raise
        self.api_base = front
        logger.info("localstripe ready at %s (upstream %s)", front, upstream)
        return front

    def stop(self, timeout: float = 10) -> None:
        """Stops both processes (SIGTERM, then SIGKILL to each process group). Idempotent."""
        procs, self._procs = self._procs, []
        self.api_base = None
        for name, proc in reversed(procs):
            stop_process_group(proc, first_signal=signal.SIGTERM, timeout=timeout, what=name)

    def __enter__(self) -> "LocalStripe":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _log_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def _spawn(self, name: str, argv: list[str]) -> None:
        with self._log_path(name).open("ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._procs.append((name, proc))

    def _wait_ready(self, front: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_tail(self._log_path(name))}")
            try:
                # Through the front to localstripe: both must be up for a 200.
                if httpx.get(f"{front}/v1/payment_intents", auth=(TEST_API_KEY, ""), timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                tails = "\n".join(f"{name}:\n{log_tail(self._log_path(name))}" for name, _ in self._procs)
                raise TimeoutError(f"localstripe did not answer within {timeout:.0f}s\n{tails}")
            time.sleep(0.1)


@dataclass(frozen=True)
class _Saved:
    path: str
    body: bytes
    status: int
    content: bytes


def _stripe_error(status: int, kind: str, code: str | None, message: str) -> JSONResponse:
    error = {"type": kind, "message": message}
    if code is not None:
        error["code"] = code
    return JSONResponse({"error": error}, status_code=status)


def create_front(upstream: str) -> Starlette:
    """The front's ASGI app: forwards to localstripe at ``upstream``, adding idempotent replays and refund limits."""
    client = httpx.AsyncClient(base_url=upstream, timeout=30)
    saved: dict[str, _Saved] = {}
    key_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    refund_lock = asyncio.Lock()

    async def forward(request: Request, body: bytes) -> Response:
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}
        answer = await client.request(
            request.method, request.url.path, params=request.query_params, content=body, headers=headers
        )
        return Response(answer.content, status_code=answer.status_code, media_type="application/json")

    async def refund_beyond_what_is_left(request: Request, body: bytes) -> Response | None:
        form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
        auth = {"authorization": request.headers.get("authorization", "")}
        if "payment_intent" in form:
            intent = await client.get(f"/v1/payment_intents/{form['payment_intent']}", headers=auth)
            charge = (intent.json().get("latest_charge") or {}) if intent.status_code == 200 else {}
        elif "charge" in form:
            answer = await client.get(f"/v1/charges/{form['charge']}", headers=auth)
            charge = answer.json() if answer.status_code == 200 else {}
        else:
            return None
        if not isinstance(charge, dict) or "amount" not in charge:
            return None  # localstripe answers the missing object itself
        # localstripe books the uncaptured part of a partial capture as a refund, so this is captured − refunded.
        left = charge["amount"] - charge.get("amount_refunded", 0)
        wanted = int(form["amount"]) if form.get("amount", "").isdigit() else left
        if left <= 0:
            return _stripe_error(400, "invalid_request_error", "charge_already_refunded", "The charge has already been refunded.")
        if wanted > left:
            return _stripe_error(
                400, "invalid_request_error", "amount_too_large",
                f"Refund amount ({wanted}) is greater than unrefunded amount on charge ({left}).",
            )
        return None

    async def execute(request: Request, body: bytes) -> Response:
        if request.method == "POST" and request.url.path == "/v1/refunds":
            async with refund_lock:
                return await refund_beyond_what_is_left(request, body) or await forward(request, body)
        return await forward(request, body)

    async def handle(request: Request) -> Response:
        body = await request.body()
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or not key:
            return await execute(request, body)
        async with key_locks[key]:
            earlier = saved.get(key)
            if earlier is not None:
                if (earlier.path, earlier.body) != (request.url.path, body):
                    return _stripe_error(
                        400, "idempotency_error", None,
                        "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    )
                return Response(
                    earlier.content, status_code=earlier.status, media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
            answer = await execute(request, body)
            if answer.status_code < 500:
                saved[key] = _Saved(request.url.path, body, answer.status_code, bytes(answer.body))
            return answer

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "DELETE"])])


def main() -> None:
    """Runs the front: ``python -m ordermesh_devstack.localstripe --port N [--host H] [--upstream URL]``; without
    ``--upstream`` it first starts localstripe itself on a free loopback port (as docker-compose does)."""
    import uvicorn

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", help="localstripe's URL; omitted: start one")
    args = parser.parse_args()
    upstream_process = None
    upstream = args.upstream
    if upstream is None:
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}"
        upstream_process = subprocess.Popen([sys.executable, "-c", _SERVE_LOCALSTRIPE, str(upstream_port)], start_new_session=True)
    # uvicorn re-raises the SIGTERM it caught once it has shut down; exiting through SystemExit runs the finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(create_front(upstream), host=args.host, port=args.port, log_level="warning")
    finally:
        if upstream_process is not None:
            stop_process_group(upstream_process, first_signal=signal.SIGTERM, timeout=10, what="localstripe")


if __name__ == "__main__":
    main()
