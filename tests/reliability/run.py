#!/usr/bin/env python3
"""ptr-server reliability suite: a live server on the real default model, on a free loopback port.

Phases (each one's failures are collected; the run exits 1 if there is any):
  1. schemathesis against openapi/openapi.json, /v1 and /admin/v1 (with the admin token): no 5xx,
     responses (JSON and SSE events) match the schema;
  2. load at 4x --max-concurrent: every attempt is a 200 or a quick 429 with Retry-After, nothing
     hangs; plain, streaming and refinement requests mixed; RSS before and after;
  3. clients that disconnect mid-stream and mid-refinement: the in-flight and engine gauges go
     back to 0, and the server still answers;
  4. SIGTERM during streams (a second server): the streams end cleanly, the process exits 0
     within the grace period, and new connections are refused.

Usage: run.py [--mode full|quick]. Environment: PTR_BIN (the binary; default the debug build in
$CARGO_TARGET_DIR, ~/.cache/ptr-server/target), PTR_MODEL_CACHE, REL_VENV (the venv holding
schemathesis, created on first use), REL_SEED, REL_KEEP (keep the work dir with the server logs).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the tree for the sibling modules below
from harness import ADMIN_TOKEN, CLIENTS, MAX_CONCURRENT, Failures, Server
from shutdown import grace_phase, sigterm_phase
from traffic import disconnect_phase, load_phase, schemathesis_phase

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("REL_VENV", "~/.cache/ptr-server/venv-rel")).expanduser()

# Sizes of each mode. `quick` is the bounded form for CI.
MODES = {
    "full": dict(st_phases="examples,coverage,fuzzing", st_examples=10, load_requests=48,
                 load_tokens=16, disconnects=16, sigterm_streams=4),
    # schemathesis's coverage phase sends every boundary value of the schema (tens of real
    # generations): the quick form leaves it to the full one.
    "quick": dict(st_phases="examples,fuzzing", st_examples=5, load_requests=10, load_tokens=8,
                  disconnects=4, sigterm_streams=2),
}


def ensure_venv() -> None:
    """Re-executes under the suite's venv (made on first use) unless schemathesis is importable."""
    requirements = HERE / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    marker = VENV / ".installed"
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve() and marker.is_file() \
            and marker.read_text() == digest:
        return
    if not (marker.is_file() and marker.read_text() == digest):
        print(f"setting up {VENV} ({requirements.name})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "-r", str(requirements)], check=True)
        marker.write_text(digest)
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def server_binary() -> Path:
    if os.environ.get("PTR_BIN"):
        return Path(os.environ["PTR_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR", "~/.cache/ptr-server/target")
    return Path(target).expanduser() / "debug" / "ptr-server"


def table(mode_name: str, st: dict, load: dict, disc: dict, term: dict, fail: Failures,
          secs: float) -> str:
    def ms(v):
        return "-" if v is None else f"{v * 1000:.0f} ms"
    rows = [
        ("schemathesis", "-" if not st else
         f"{st['cases']} cases, {st['failures']} failures ({st['secs']:.0f} s)"),
        ("load: requests", "-" if not load else
         f"{load['requests']} served through {load['sent']} attempts, {CLIENTS} clients, "
         f"--max-concurrent {MAX_CONCURRENT} ({load['secs']:.0f} s)"),
        ("load: 2xx / 429 / 4xx / 5xx / errors", "-" if not load else
         f"{load['2xx']} / {load['429']} / {load['4xx']} / {load['5xx']} / {load['errors']}"),
        ("load: time to 429 p50 / p95", "-" if not load else
         f"{ms(load['p50_429'])} / {ms(load['p95_429'])}"),
        ("load: RSS before / after", "-" if not load else
         f"{load['rss_before']:.0f} MiB / {load['rss_after']:.0f} MiB"),
        ("disconnects", "-" if not disc else
         f"{disc['disconnects']} ({disc['cancelled']:.0f} counted cancelled, "
         f"{disc['ended_early']} streams ended before the client left), slowest settle "
         f"{disc['max_settle']:.1f} s"),
        ("after disconnects: in-flight / engine seqs", "-" if not disc else
         f"{disc['in_flight']:.0f} / {disc['active']:.0f}, next requests "
         f"{'ok' if disc['after_ok'] else 'FAILED'}"),
        ("SIGTERM", "-" if not term else
         f"{term['clean']}/{term['streams']} streams ended cleanly, exit {term['rc']} after "
         f"{term['exit_secs']:.1f} s, refused while draining: {term['refused_during']}, "
         f"after: {term['refused_after']}"),
        ("SIGTERM, stream longer than the grace", "-" if "grace" not in term else
         f"{term['grace']['seen']}; exit {term['grace']['rc']}"),
        ("result", f"{'PASS' if not fail else f'FAIL ({len(fail)})'} in {secs:.0f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"== ptr-server reliability, mode {mode_name} =="]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"  - {f}" for f in fail]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    args = parser.parse_args()
    ensure_venv()
    mode = MODES[args.mode]
    seed = int(os.environ.get("REL_SEED", random.randrange(1 << 16)))
    binary = server_binary()
    if not binary.is_file():
        print(f"no server binary at {binary}: build it (`cargo build`) or set PTR_BIN")
        return 2
    work = Path(tempfile.mkdtemp(prefix="ptr-reliability-"))
    print(f"binary {binary}, seed {seed}, work dir {work}", flush=True)
    fail = Failures()
    st = load = disc = term = {}
    start = time.monotonic()
    try:
        server = Server(binary, work, "main", "--max-concurrent", str(MAX_CONCURRENT),
                        "--default-max-tokens", "16", "--max-rounds", "3",
                        "--request-timeout-secs", "120", "--shutdown-grace-secs", "5",
                        "--admin-token", ADMIN_TOKEN)
        st = schemathesis_phase(server, work, mode, seed, fail)
        load = load_phase(server, mode, seed, fail)
        disc = disconnect_phase(server, mode, seed, fail)
        fail.check(server.proc.poll() is None, "the server died")
        server.stop()
        term = sigterm_phase(binary, work, mode, fail)
        term["grace"] = grace_phase(binary, work, fail)
    except Exception as e:  # a phase that could not run is a failure too
        fail.check(False, f"{type(e).__name__}: {e}")
    finally:
        for server in Server.started:
            server.stop()
    print(table(args.mode, st, load, disc, term, fail, time.monotonic() - start), flush=True)
    if fail or os.environ.get("REL_KEEP"):
        print(f"server logs and reports kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
