"""Phase 4: SIGTERM during streams, each on a server of its own."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

from harness import (CLIENT_ERRORS, PROMPTS, REQUEST_TIMEOUT, SHUTDOWN_GRACE, SOCKET_TIMEOUT,
                     Failures, Server, chat_stream_problem, open_post, read_events,
                     refinement_stream_problem)


def sigterm_phase(binary: Path, work: Path, mode: dict, fail: Failures) -> dict:
    n = mode["sigterm_streams"]
    print(f"[4/4] SIGTERM during {n} streams (grace {SHUTDOWN_GRACE} s)", flush=True)
    server = Server(binary, work, "sigterm", "--max-concurrent", str(n), "--max-rounds", "2",
                    "--shutdown-grace-secs", str(SHUTDOWN_GRACE))
    results: dict[int, str | None] = {}
    started = threading.Barrier(n + 1)

    def stream(i: int) -> None:
        refinements = i % 2 == 1
        path = "/v1/refinements" if refinements else "/v1/chat/completions"
        body = {"messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                "max_tokens": 24, "refinement": {"rounds": 2}} | (
                {} if refinements else {"stream": True})
        conn = None
        try:
            conn, resp = open_post(server.port, path, body)
            started.wait(SOCKET_TIMEOUT)
            if resp.status != 200:
                results[i] = f"status {resp.status}"
                return
            args = read_events(resp, time.monotonic() + REQUEST_TIMEOUT)
            results[i] = (refinement_stream_problem(*args, rounds=2) if refinements
                          else chat_stream_problem(*args))
        except (*CLIENT_ERRORS, threading.BrokenBarrierError) as e:
            results[i] = f"{type(e).__name__}: {e}"
            started.abort()
        finally:
            if conn:
                conn.close()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    started.wait(SOCKET_TIMEOUT)  # every stream has its 200: they are running or queued
    server.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(0.5)
    refused_during = refused(server.port)
    rc = server.wait_exit(SHUTDOWN_GRACE + 30)
    exit_secs = time.monotonic() - signalled
    for t in threads:
        t.join(REQUEST_TIMEOUT)
    clean = sum(1 for i in range(n) if results.get(i) is None and i in results)
    for i in range(n):
        fail.check(i in results and results[i] is None,
                   f"SIGTERM stream {i}: {results.get(i, 'no result')}")
    fail.check(rc == 0, f"after SIGTERM the server exited {rc} (log: {server.log_path})")
    fail.check(exit_secs <= SHUTDOWN_GRACE + 30, f"exit took {exit_secs:.1f} s")
    refused_after = refused(server.port)
    fail.check(refused_after, "a connection was accepted after the server exited")
    fail.check(refused_during, "a new connection was accepted while the server drained")
    return {"streams": n, "clean": clean, "rc": rc, "exit_secs": exit_secs,
            "refused_during": refused_during, "refused_after": refused_after}


def grace_phase(binary: Path, work: Path, fail: Failures) -> dict:
    """A stream that outlives the shutdown grace: the client must get the error envelope (code
    `server_shutting_down`) and `[DONE]`, not a cut connection, and the exit must be clean."""
    grace = 2
    print(f"[4/4] SIGTERM with a stream longer than the grace ({grace} s)", flush=True)
    server = Server(binary, work, "grace", "--shutdown-grace-secs", str(grace))
    body = {"messages": [{"role": "user", "content": "Tell me a long story about a lighthouse."}],
            "max_tokens": 1000, "stream": True, "temperature": 0.7}
    conn, resp = open_post(server.port, "/v1/chat/completions", body)
    try:
        read_events(resp, time.monotonic() + REQUEST_TIMEOUT, lambda ev: len(ev) >= 2)
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            events, _ = read_events(resp, time.monotonic() + REQUEST_TIMEOUT)
            end = "EOF"
        except CLIENT_ERRORS as e:
            events, end = [], type(e).__name__
        ended_after = time.monotonic() - signalled
    finally:
        conn.close()
    rc = server.wait_exit(grace + 30)
    fail.check(rc == 0, f"a server cut at the end of its grace exited {rc}")
    data = [e.get("data", "") for e in events]
    if data and data[-1] == "[DONE]" and not any(d.startswith('{"error"') for d in data):
        seen = "finished within the grace"
    else:
        codes = [json.loads(d)["error"].get("code") for d in data if d.startswith('{"error"')]
        fail.check(codes == ["server_shutting_down"] and data[-1:] == ["[DONE]"],
                   f"a stream cut at the end of the grace ended {end} with error codes {codes} "
                   f"and {'[DONE]' if data[-1:] == ['[DONE]'] else 'no [DONE]'}")
        seen = f"ended after {ended_after:.1f} s with {codes} and [DONE]"
    return {"seen": seen, "rc": rc}


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True
