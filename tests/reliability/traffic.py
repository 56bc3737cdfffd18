"""Phases 1 to 3 on one server: schemathesis, load at 4x --max-concurrent, client disconnects."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import (ADMIN_TOKEN, CLIENT_ERRORS, CLIENTS, MAX_CONCURRENT, PROMPTS,
                     QUICK_ANSWER_TIMEOUT, REQUEST_TIMEOUT, ROOT, SETTLE_TIMEOUT, SOCKET_TIMEOUT, Failures, Server,
                     busy, chat_stream_problem, get, metric, open_post, read_events, round_of,
                     refinement_stream_problem, settle, wait_until)

HERE = Path(__file__).resolve().parent


def schemathesis_phase(server: Server, work: Path, mode: dict, seed: int, fail: Failures) -> dict:
    print(f"[1/4] schemathesis: {mode['st_phases']}, {mode['st_examples']} examples per operation",
          flush=True)
    out = work / "schemathesis.txt"
    args = [str(Path(sys.executable).parent / "schemathesis"), "run",
            str(ROOT / "openapi" / "openapi.json"), "--url", f"http://127.0.0.1:{server.port}",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--phases", mode["st_phases"], "--max-examples", str(mode["st_examples"]),
            "--workers", "1", "--seed", str(seed),
            # The admin token on every call: /v1 has no API keys here, and it opens /admin/v1.
            "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
            "--request-timeout", str(REQUEST_TIMEOUT), "--generation-database", "none",
            "--continue-on-failure", "--no-color", "--suppress-health-check", "all",
            "--report", "junit", "--report-junit-path", str(work / "schemathesis-junit.xml")]
    status, _, models = get(server.port, "/v1/models", timeout=SOCKET_TIMEOUT)
    context = json.loads(models)["data"][0]["context_length"] if status == 200 else None
    if not fail.check(context is not None, f"/v1/models answered {status}"):
        return {}
    env = dict(os.environ, SCHEMATHESIS_HOOKS=str(HERE / "schemathesis_hooks.py"),
               REL_CONTEXT_LENGTH=str(context), PYTHONDONTWRITEBYTECODE="1")
    start = time.monotonic()
    with open(out, "w") as f:
        try:
            # In the work dir: schemathesis keeps a cache of crashes in `.schemathesis/` there.
            rc = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work,
                                timeout=1800).returncode
        except subprocess.TimeoutExpired:
            rc = "timed out"
    text = out.read_text(errors="replace")
    cases = re.search(r"(\d+) generated", text)
    failures = re.search(r"(\d+) unique failures?", text)
    summary = {"cases": int(cases.group(1)) if cases else None,
               "failures": int(failures.group(1)) if failures else 0,
               "secs": time.monotonic() - start, "report": str(out)}
    if not fail.check(rc == 0, f"schemathesis exited {rc}; its report: {out}"):
        section = text.split("FAILURES", 1)[-1] if "FAILURES" in text else text
        print(section[:6000], flush=True)
    ok, _, now = settle(server)
    fail.check(ok, f"after schemathesis, in-flight / engine sequences stayed at {now}")
    return summary


def load_body(kind: str, tokens: int, rng: random.Random) -> tuple[str, dict]:
    body = {"messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
            "max_tokens": tokens, "temperature": rng.choice([0, 0.7])}
    if kind == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    elif kind == "refine":
        body["refinement"] = {"rounds": 2}
    elif kind == "refine_stream":
        body |= {"stream": True, "refinement": {"rounds": 2}}
    elif kind == "refinements":
        body["refinement"] = {"rounds": 2}
        return "/v1/refinements", body
    return "/v1/chat/completions", body


LOAD_KINDS = ["plain", "stream", "refine", "refine_stream", "refinements"]


def completed_problem(kind: str, resp, deadline: float) -> str | None:
    """Reads a 200 to its end; what is wrong with it, if anything."""
    if kind == "refinements":
        return refinement_stream_problem(*read_events(resp, deadline), rounds=2)
    if kind in ("stream", "refine_stream"):
        return chat_stream_problem(*read_events(resp, deadline))
    body = json.loads(resp.read())
    choice = body["choices"][0]
    if choice["finish_reason"] not in ("stop", "length"):
        return f"finish_reason {choice['finish_reason']}"
    if kind == "refine":
        report = body["refinement"]
        if report["stop_reason"] == "rounds_done" and len(report["rounds"]) != 2:
            return f"rounds_done after {len(report['rounds'])} of 2 rounds"
    return None


def load_phase(server: Server, mode: dict, seed: int, fail: Failures) -> dict:
    n = mode["load_requests"]
    print(f"[2/4] load: {n} requests from {CLIENTS} clients, --max-concurrent {MAX_CONCURRENT}",
          flush=True)
    ok, _, now = settle(server)
    fail.check(ok, f"before the load, in-flight / engine sequences stayed at {now}")
    rss_before = server.rss_mib()
    lock = threading.Lock()
    next_request = iter(range(n))
    stats = {"sent": 0, "2xx": 0, "429": 0, "4xx": 0, "5xx": 0, "errors": 0, "t429": []}

    def record(key: str, problem: str | None = None) -> None:
        with lock:
            stats[key] += 1
            if problem:
                fail.check(False, problem)

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        while True:
            with lock:
                i = next(next_request, None)
            if i is None:
                return
            kind = LOAD_KINDS[i % len(LOAD_KINDS)]
            path, body = load_body(kind, mode["load_tokens"], rng)
            while True:  # attempts of this request, until it is served
                with lock:
                    stats["sent"] += 1
                sent = time.monotonic()
                deadline = sent + REQUEST_TIMEOUT
                conn = None
                try:
                    conn, resp = open_post(server.port, path, body)
                    waited = time.monotonic() - sent
                    if resp.status == 429:
                        retry_after = resp.getheader("retry-after")
                        error = json.loads(resp.read()).get("error", {})
                        with lock:
                            stats["t429"].append(waited)
                        record("429", None if retry_after and retry_after.isdigit()
                               and error.get("type") == "rate_limit_error" and
                               waited < QUICK_ANSWER_TIMEOUT else
                               f"{kind}: bad 429 (Retry-After {retry_after!r}, error {error}, "
                               f"after {waited:.1f} s)")
                        if time.monotonic() > give_up:
                            record("errors", f"{kind}: still refused {give_up_secs} s into the "
                                             f"load (are slots leaking?)")
                            break
                        time.sleep(int(retry_after or 1) * rng.uniform(1.0, 1.5))
                        continue
                    if resp.status == 200:
                        problem = completed_problem(kind, resp, deadline)
                        record("2xx", problem and f"{kind}: {problem}")
                    else:
                        key = "5xx" if resp.status >= 500 else "4xx"
                        record(key, f"{kind}: {resp.status} {resp.read()[:300]!r}")
                except CLIENT_ERRORS as e:
                    record("errors", f"{kind}: {type(e).__name__}: {e}")
                finally:
                    if conn:
                        conn.close()
                break

    start = time.monotonic()
    # Admission is a race, not a queue: a request may lose it many times. Only a load that stops
    # being served (a slot that is never given back) should reach this.
    give_up_secs = max(600, 30 * n)
    give_up = start + give_up_secs
    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - start
    ok, _, now = settle(server)
    fail.check(ok, f"after the load, in-flight / engine sequences stayed at {now}")
    fail.check(stats["2xx"] == n, f"{stats['2xx']} of {n} requests were served")
    fail.check(stats["429"] > 0, f"{CLIENTS} clients on {MAX_CONCURRENT} slots got no 429")
    t429 = sorted(stats.pop("t429"))
    return stats | {"requests": n, "secs": secs, "rss_before": rss_before,
                    "rss_after": server.rss_mib(),
                    "p50_429": percentile(t429, 50), "p95_429": percentile(t429, 95)}


def percentile(sorted_values: list[float], p: int) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))]


# (what, path, body extras, round to reach before leaving (None: leave any time), most events
# read after that). A body without `stream` is a JSON request the client leaves while it waits.
# The prompts ask for long answers, so that the client leaves while tokens are still coming.
LONG_PROMPTS = [
    "Tell me a long story about a lighthouse keeper and a storm.",
    "Write a detailed essay on the history of bread, with many examples.",
]
DISCONNECTS = [
    ("stream", "/v1/chat/completions", {"stream": True, "max_tokens": 48}, None, 10),
    ("refine round 2, chat stream", "/v1/chat/completions",
     {"stream": True, "max_tokens": 24, "refinement": {"rounds": 2}}, 2, 4),
    ("refine round 2, /v1/refinements", "/v1/refinements",
     {"max_tokens": 24, "refinement": {"rounds": 2}}, 2, 4),
    ("refine, JSON", "/v1/chat/completions", {"max_tokens": 24, "refinement": {"rounds": 2}},
     None, 0),
]


def close_abruptly(conn: http.client.HTTPConnection, rst: bool) -> None:
    if conn.sock and rst:  # RST instead of FIN
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def disconnect_phase(server: Server, mode: dict, seed: int, fail: Failures) -> dict:
    k = mode["disconnects"]
    print(f"[3/4] {k} client disconnects mid-stream and mid-refinement", flush=True)
    rng = random.Random(seed)
    cancelled_before = metric(server.metrics(), "ptr_requests_cancelled_total")
    settle_secs = []
    ended_early = 0
    for i in range(k):
        what, path, extra, reach_round, more = DISCONNECTS[i % len(DISCONNECTS)]
        body = {"messages": [{"role": "user", "content": rng.choice(LONG_PROMPTS)}],
                "temperature": 0.7} | extra
        rst = rng.random() < 0.5
        deadline = time.monotonic() + REQUEST_TIMEOUT
        conn = None
        try:
            if not body.get("stream") and path.endswith("completions"):
                # A JSON request: the client gives up while the rounds run.
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=SOCKET_TIMEOUT)
                conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
                fail.check(wait_until(lambda: busy(server.metrics())[0] >= 1),
                           f"disconnect {i} ({what}): the request never started")
                time.sleep(rng.uniform(0.2, 2.0))
            else:
                while True:  # the last disconnect's slot may take a moment to come back
                    conn, resp = open_post(server.port, path, body)
                    if resp.status != 429 or time.monotonic() > deadline:
                        break
                    conn.close()
                    time.sleep(0.5)
                if not fail.check(resp.status == 200, f"disconnect {i} ({what}): {resp.status}"):
                    continue
                ended = False
                if reach_round is not None:
                    _, ended = read_events(resp, deadline,
                                           lambda ev: round_of(ev[-1]) == reach_round)
                more_events = rng.randint(0, more)
                if more_events and not ended:
                    _, ended = read_events(resp, deadline, lambda ev: len(ev) >= more_events)
                if ended:  # the model stopped early: nothing was left to cancel
                    ended_early += 1
        except CLIENT_ERRORS as e:
            fail.check(False, f"disconnect {i} ({what}): {type(e).__name__}: {e}")
        finally:
            if conn:
                close_abruptly(conn, rst)
        ok, secs, now = settle(server)
        settle_secs.append(secs)
        fail.check(ok, f"disconnect {i} ({what}, {'RST' if rst else 'FIN'}): in-flight / engine "
                       f"sequences still {now} after {SETTLE_TIMEOUT} s")
    values = server.metrics()
    in_flight, active = busy(values)
    cancelled = metric(values, "ptr_requests_cancelled_total") - cancelled_before
    fail.check(cancelled >= 1, "no disconnect was counted in ptr_requests_cancelled_total")
    # The server still serves, streaming and not.
    after = []
    for kind in ("plain", "stream"):
        path, body = load_body(kind, 8, rng)
        conn, resp = open_post(server.port, path, body)
        try:
            problem = (f"status {resp.status}" if resp.status != 200 else
                       completed_problem(kind, resp, time.monotonic() + REQUEST_TIMEOUT))
        finally:
            conn.close()
        fail.check(problem is None, f"a {kind} request after the disconnects: {problem}")
        after.append(problem is None)
    return {"disconnects": k, "ended_early": ended_early, "in_flight": in_flight, "active": active,
            "cancelled": cancelled, "max_settle": max(settle_secs, default=0),
            "after_ok": all(after)}
