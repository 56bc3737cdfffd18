"""The reliability suite's harness: a live `ptr-server` child process, its metrics, and an HTTP
client small enough to leave a stream at any event (http.client, no dependencies)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The load runs CLIENTS clients against a server of MAX_CONCURRENT generations.
MAX_CONCURRENT = 2
CLIENTS = 4 * MAX_CONCURRENT
# Hang bounds, not speed targets: far above what a loaded 2-core machine needs.
READY_TIMEOUT = 300
REQUEST_TIMEOUT = 300
SOCKET_TIMEOUT = 120
QUICK_ANSWER_TIMEOUT = 10
SETTLE_TIMEOUT = 15
SHUTDOWN_GRACE = 120
# The main server's admin token: schemathesis sends it on every call, so the admin routes
# (/admin/v1) are fuzzed behind their auth, not answered 404 (admin API off) or 401.
ADMIN_TOKEN = "reliability-admin-token"
PROMPTS = [
    "Name three primary colors.",
    "Write one sentence about cats.",
    "What is the capital of France?",
    "Give me a word that rhymes with tree.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failures(list):
    """The failures of a run, printed as they happen."""

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.append(message)
            print(f"  FAIL {message}", flush=True)
        return ok


class Server:
    """One `ptr-server serve` child process on a free loopback port, logging to a file."""

    started: list[Server] = []  # every one, so that none outlives the run

    def __init__(self, binary: Path, work: Path, name: str, *flags: str):
        self.port = free_port()
        self.log_path = work / f"{name}.log"
        cache = os.environ.get("PTR_MODEL_CACHE", "~/.cache/ptr-server/models")
        args = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--models", str(ROOT / "models.toml"),
                "--model-cache", str(Path(cache).expanduser()), "--fetch",
                "--data-dir", str(work / f"{name}-data"), *flags]
        env = dict(os.environ, NO_COLOR="1")
        env.setdefault("RUST_LOG", "info,mistralrs_core=warn")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        Server.started.append(self)
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode} before it was "
                                   f"ready; log: {self.log_path}\n{self.log_tail()}")
            try:
                if get(self.port, "/ready", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server was not ready within {READY_TIMEOUT} s; log: "
                           f"{self.log_path}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc/<pid>/status")

    def metrics(self) -> dict[str, float]:
        status, _, body = get(self.port, "/metrics", timeout=SOCKET_TIMEOUT)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        values = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                values[series] = float(value)
        return values

    def wait_exit(self, timeout: float) -> int | str:
        """The exit code, or "hung" (and the process killed) when it has not exited in time."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "hung"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.wait_exit(SHUTDOWN_GRACE + 30)


def metric(values: dict[str, float], name: str) -> float:
    """The sum of a metric over its label sets (0 when it has none yet)."""
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


def busy(values: dict[str, float]) -> tuple[float, float]:
    return metric(values, "ptr_requests_in_flight"), metric(values, "ptr_engine_active_sequences")


def wait_until(condition, timeout: float = SETTLE_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def settle(server: Server) -> tuple[bool, float, tuple[float, float]]:
    """Waits until no generation is in flight and the engine holds no sequence."""
    start = time.monotonic()
    while True:
        now = busy(server.metrics())
        if now == (0, 0):
            return True, time.monotonic() - start, now
        if time.monotonic() - start > SETTLE_TIMEOUT:
            return False, time.monotonic() - start, now
        time.sleep(0.2)


def get(port: int, path: str, timeout: float) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def open_post(port: int, path: str, body: dict) -> tuple[http.client.HTTPConnection,
                                                          http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    return conn, conn.getresponse()


class Hang(Exception):
    pass


# What a client call can fail with: the network, a hang, or a body that is not what it should be.
CLIENT_ERRORS = (OSError, Hang, http.client.HTTPException, ValueError, KeyError, TypeError,
                 IndexError)


def read_events(resp: http.client.HTTPResponse, deadline: float, stop=None) -> tuple[list, bool]:
    """SSE events ({"event", "data"}) until end of stream, or until `stop(events)` is true.
    Returns the events and whether the stream ended."""
    events, event = [], {}
    while True:
        if time.monotonic() > deadline:
            raise Hang("the stream ran past the client's deadline")
        raw = resp.readline()
        if not raw:
            if event:
                events.append(event)
            return events, True
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if event:
                events.append(event)
                event = {}
                if stop and stop(events):
                    return events, False
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                event["data"] = event["data"] + "\n" + value if "data" in event else value
            elif field == "event":
                event["event"] = value


def round_of(event: dict) -> int | None:
    """The refinement round an event belongs to, in either stream format."""
    data = event.get("data", "")
    if not data.startswith("{"):
        return None
    value = json.loads(data)
    if "round" in value:
        return value["round"]
    return (value.get("refinement") or {}).get("round")


def chat_stream_problem(events: list, ended: bool) -> str | None:
    """What is wrong with a finished chat completion stream, if anything."""
    if not ended:
        return "the stream did not end"
    if not events or events[-1].get("data") != "[DONE]":
        return f"the stream did not end with [DONE] (last event {events[-1] if events else None})"
    chunks = [json.loads(e["data"]) for e in events[:-1]]
    errors = [c for c in chunks if "error" in c]
    if errors:
        return f"error in stream: {errors[0]}"
    if not any(ch.get("finish_reason") for c in chunks for ch in c.get("choices", [])):
        return "no chunk carried a finish_reason"
    return None


def refinement_stream_problem(events: list, ended: bool, rounds: int) -> str | None:
    """What is wrong with a finished /v1/refinements stream, if anything."""
    if not ended:
        return "the stream did not end"
    names = [e.get("event") for e in events]
    if "error" in names:
        return f"error event: {events[names.index('error')]['data']}"
    if not names or names[-1] != "refinement.completed":
        return f"the stream did not end with refinement.completed (last: {names[-1:]})"
    done = json.loads(events[-1]["data"])
    if not 1 <= done["rounds"] <= rounds:
        return f"refinement.completed reports {done['rounds']} rounds, asked for {rounds}"
    return None
