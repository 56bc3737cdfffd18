#!/usr/bin/env python3
"""ptr-server beside llama.cpp's server on the same GGUF file, one server at a time, driven by the
same client (`ptr-server bench --stream`, greedy). Prints one table: single-stream decode tok/s,
aggregate tok/s at --concurrency, time to first token of a fresh ~200-token prompt
(`--unique-prompts`), inter-token latency, empty and failed responses; ptr-server, llama.cpp, and
the ratio ptr-server / llama.cpp. The raw `bench --json` reports, the server logs and the table go
to --out.

llama.cpp's server is llama-cpp-python's (`python -m llama_cpp.server`), installed on first use
into its own venv (--venv) by pip, which compiles llama.cpp from source with cmake for this CPU
(niced; a while on 2 cores). A marker file in the venv makes the install a one-time step.

Each server runs alone on the machine: started, waited for, sent one warm-up request, measured
(--requests streams at concurrency 1; 2 x --requests at --concurrency; --requests fresh prompts at
concurrency 1), then stopped before the next one starts. Everything listens on 127.0.0.1 only, and
every server this script starts is stopped on exit, error or Ctrl-C. Usage (or `make bench-peer`):
  python3 bench/peer.py --bin PTR_SERVER [--gguf FILE] [--model-id ID] [--requests 5] [--out DIR]
Without --gguf, the model's cached file from models.toml (fetched by `--bin fetch-model` if absent).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ptr-server"
LLAMA_SPEC = "llama-cpp-python[server]==0.3.36"

# Hang bounds, not speed targets.
READY_TIMEOUT = 600
STOP_TIMEOUT = 30
WARMUP_TIMEOUT = 600

# With a chat template's head and `--unique-prompts`' prefix ("Request k of n (run tag). "), about
# 200 prompt tokens (SmolLM2: 197); the run prints the count the servers report for the warm-up.
FRESH_PROMPT = (
    "Read the following notes about a small town library and then answer the question at the "
    "end in two or three sentences. The library opened in 1908 in a single room above the post "
    "office, with four hundred books donated by local families. In 1925 it moved to a brick "
    "building on Main Street, paid for by a bequest from a retired schoolteacher who asked that "
    "the reading room stay open every evening. A flood in 1972 damaged the basement archive, and "
    "volunteers spent a whole summer drying old newspapers one page at a time. In 1998 the library "
    "installed its first public computers. Question: which event in the library's history do you "
    "think mattered most to the town, and why?"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    """(status, JSON body or {}) of one request; raises OSError when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:
        return status, {}


# ---------------------------------------------------------------------------------------------
# Setup: llama.cpp's venv, the GGUF file


def install_llama(venv: Path, spec: str) -> Path:
    """The venv's python, with `spec` installed (once: the marker file records what was)."""
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text().strip() == spec:
        return python
    log(f"installing {spec} into {venv} (pip compiles llama.cpp with cmake, niced: this takes a "
        f"while on 2 cores; once)")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # For this CPU: GGML_NATIVE (-march=native), which llama.cpp turns off by default when
    # SOURCE_DATE_EPOCH is set; built here from the sdist, never a cached or found wheel.
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    env.pop("SOURCE_DATE_EPOCH", None)
    env.setdefault("CMAKE_ARGS", "-DGGML_NATIVE=ON")
    subprocess.run(["nice", "-n", "19", str(python), "-m", "pip", "install",
                    "--disable-pip-version-check", "--no-cache-dir",
                    "--no-binary", "llama-cpp-python", spec], check=True, env=env)
    marker.write_text(spec + "\n")
    return python


def registry(models_toml: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        sys.exit("reading models.toml needs Python 3.11 (tomllib); pass --gguf and --model-id")
    with open(models_toml, "rb") as f:
        return tomllib.load(f)


def resolve_gguf(args) -> Path:
    """--gguf, or the model's file in the model cache, fetched by `--bin fetch-model` if absent."""
    if args.gguf:
        path = Path(args.gguf).expanduser().resolve()
        if not path.is_file():
            sys.exit(f"no GGUF file at {path}")
        return path
    spec = next((m for m in registry(args.models).get("model", []) if m["id"] == args.model_id),
                None)
    if spec is None:
        sys.exit(f"model `{args.model_id}` is not in {args.models}; pass --gguf")
    if "path" in spec:
        return (args.models.parent / spec["path"]).resolve()
    cache = Path(os.environ.get("PTR_MODEL_CACHE") or CACHE / "models").expanduser()
    # The served file: the requantized copy when models.toml asks for one.
    path = cache / args.model_id / spec.get("requantize", {}).get("file", spec["file"])
    if not path.is_file():
        log(f"fetching {args.model_id} into {cache}")
        subprocess.run([args.bin, "fetch-model", "--models", str(args.models),
                        "--model-cache", str(cache), args.model_id], check=True)
    return path


# ---------------------------------------------------------------------------------------------
# The servers, one at a time


class Server:
    """A server child process in its own process group on a free loopback port, logging to a
    file. Every instance is stopped by `stop_all`."""

    running: list[Server] = []

    def __init__(self, name: str, cmd: list[str], port: int, ready_path: str, log_path: Path,
                 env: dict | None = None):
        self.name, self.port, self.ready_path, self.log_path = name, port, ready_path, log_path
        self.url = f"http://127.0.0.1:{port}"
        log(f"starting {name} on {self.url} (log: {log_path})")
        with open(log_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        Server.running.append(self)

    def wait_ready(self) -> None:
        start = time.monotonic()
        while time.monotonic() - start < READY_TIMEOUT:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it was "
                                   f"ready; log {self.log_path}:\n{self.log_tail()}")
            try:
                if http("GET", self.url + self.ready_path, timeout=5)[0] == 200:
                    log(f"{self.name} ready after {time.monotonic() - start:.1f} s")
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready within {READY_TIMEOUT} s; log {self.log_path}")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL if it has not exited within STOP_TIMEOUT."""
        if self in Server.running:
            Server.running.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass

    @staticmethod
    def stop_all() -> None:
        for server in list(Server.running):
            server.stop()


def start_ptr(args, gguf: Path, out: Path) -> Server:
    # A registry of one model, served from the file in place; refinement off (one round).
    models = out / "ptr-models.toml"
    models.write_text(
        f'default_model = "{args.model_id}"\n\n[[model]]\nid = "{args.model_id}"\n'
        f"path = {json.dumps(str(gguf))}\n\n[model.refinement]\nrounds = 1\nearly_stop = false\n")
    port = free_port()
    cmd = [args.bin, "serve", "--host", "127.0.0.1", "--port", str(port), "--models", str(models),
           "--data-dir", str(out / "ptr-data"), "--max-concurrent", str(max(8, args.concurrency)),
           "--shutdown-grace-secs", "5"]
    env = dict(os.environ, NO_COLOR="1")
    env.setdefault("RUST_LOG", "info,mistralrs_core=warn")
    env.pop("PTR_ADMIN_TOKEN", None)  # the admin API stays off
    env.pop("PTR_API_KEYS", None)
    return Server("ptr-server", cmd, port, "/ready", out / "ptr-server.log", env)


def start_llama(args, python: Path, gguf: Path, out: Path) -> Server:
    port = free_port()
    threads = str(args.threads)
    # interrupt_requests False: a new request waits for the running one instead of ending it (the
    # default ends a stream early and answers it empty: not a completion to time).
    cmd = [str(python), "-m", "llama_cpp.server", "--model", str(gguf),
           "--model_alias", args.model_id, "--host", "127.0.0.1", "--port", str(port),
           "--n_threads", threads, "--n_threads_batch", threads, "--n_ctx", str(args.n_ctx),
           "--interrupt_requests", "False"]
    return Server("llama.cpp", cmd, port, "/v1/models", out / "llama.cpp.log")


# ---------------------------------------------------------------------------------------------
# Measuring one server


def warm_up(server: Server, model: str, requests: int) -> int | None:
    """One short greedy completion (not streamed) of the fresh prompt behind a prefix shaped like
    `--unique-prompts`' own; its prompt tokens, about those of each fresh request."""
    prompt = f"Request 0 of {requests} (run 000000). {FRESH_PROMPT}"
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 8, "temperature": 0}
    status, reply = http("POST", server.url + "/v1/chat/completions", body, timeout=WARMUP_TIMEOUT)
    if status != 200:
        raise RuntimeError(f"{server.name}'s warm-up answered HTTP {status}: {reply}")
    return (reply.get("usage") or {}).get("prompt_tokens")


def bench(args, server: Server, label: str, out: Path, requests: int, concurrency: int,
          *extra: str) -> dict:
    """One `ptr-server bench --json --stream` run; its report, also written to out/."""
    cmd = [args.bench_bin, "bench", "--json", "--stream", "--url", server.url,
           "--model", args.model_id, "--max-tokens", str(args.max_tokens),
           "--temperature", "0", "--requests", str(requests), "--concurrency", str(concurrency),
           *extra]
    log(f"  {server.name}: {label} ({requests} requests, concurrency {concurrency})")
    # Bounded: even at 1 tok/s and no concurrency every request would be done.
    timeout = 300 + requests * (args.max_tokens + 60)
    env = {k: v for k, v in os.environ.items() if k != "PTR_BENCH_API_KEY"}
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {done.returncode}")
    report = json.loads(done.stdout)
    (out / f"{server.name}-{label}.json").write_text(json.dumps(report, indent=2) + "\n")
    if report.get("first_error"):
        log(f"  {server.name} {label}: first error: {report['first_error']}")
    return report


def measure(args, server: Server, out: Path) -> dict:
    server.wait_ready()
    prompt_tokens = warm_up(server, args.model_id, args.requests)
    reports = {
        "single": bench(args, server, "single", out, args.requests, 1),
        "concurrent": bench(args, server, "concurrent", out, 2 * args.requests, args.concurrency),
        "fresh": bench(args, server, "fresh-ttft", out, args.requests, 1,
                       "--unique-prompts", "--prompt", FRESH_PROMPT),
    }
    return {"prompt_tokens": prompt_tokens, "reports": reports}


# ---------------------------------------------------------------------------------------------
# The table


def pick(report: dict, key: str, stat: str = "p50") -> float | None:
    summary = report.get(key)
    return summary.get(stat) if isinstance(summary, dict) else None


def rows(result: dict | None) -> dict:
    """The table's figures of one server (None where it was not run or measured nothing)."""
    if result is None:
        return {}
    r = result["reports"]
    ttft, itl = pick(r["fresh"], "ttft"), pick(r["single"], "itl")
    return {
        "decode": pick(r["single"], "decode_tokens_per_second"),
        "aggregate": r["concurrent"]["output_tokens_per_second"],
        "ttft": ttft,
        "itl": None if itl is None else itl * 1000,
        "empty": sum(x["empty"] for x in r.values()),
        "failed": sum(x["errors"] for x in r.values()),
        "requests": sum(x["requests"] for x in r.values()),
        "prompt_tokens": result["prompt_tokens"],
    }


def table(args, gguf: Path, ptr: dict, llama: dict) -> str:
    counts = [r["prompt_tokens"] for r in (ptr, llama) if r.get("prompt_tokens")]
    # What each server counted (template included), when they differ: ptr-server's first.
    tokens = "/".join(str(c) for c in dict.fromkeys(counts)) or "~200"
    fresh = f"fresh {tokens}-token prompt"
    lines = [
        f"ptr-server vs llama.cpp's server: {gguf.name} ({args.model_id}), one server at a time, "
        f"greedy, max_tokens {args.max_tokens}, {args.threads} threads for llama.cpp",
    ]
    spec = [
        ("single-stream decode tok/s (p50)", "decode", 1),
        (f"{args.concurrency} concurrent, aggregate tok/s", "aggregate", 1),
        (f"TTFT p50, {fresh} (s)", "ttft", 3),
        ("ITL p50, single stream (ms)", "itl", 1),
    ]
    label_width = max(len(s[0]) for s in spec + [("empty / failed responses", "", 0)]) + 2

    def cell(value, decimals: int) -> str:
        return "-" if value is None else f"{value:.{decimals}f}"

    lines.append(f"{'':<{label_width}}{'ptr-server':>12}{'llama.cpp':>12}{'ratio':>9}")
    for label, key, decimals in spec:
        a, b = ptr.get(key), llama.get(key)
        ratio = f"{a / b:.2f}x" if a is not None and b else "-"
        lines.append(f"{label:<{label_width}}{cell(a, decimals):>12}{cell(b, decimals):>12}"
                     f"{ratio:>9}")

    def failures(r: dict) -> str:
        return f"{r['empty']} / {r['failed']} of {r['requests']}" if r else "-"

    lines.append(f"{'empty / failed responses':<{label_width}}{failures(ptr):>12}"
                 f"{failures(llama):>12}{'-':>9}")
    lines.append("ratio = ptr-server / llama.cpp: above 1 is faster for tok/s, slower for TTFT "
                 "and ITL")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--bin", required=True, help="the ptr-server binary that serves")
    ap.add_argument("--bench-bin", help="the ptr-server binary whose `bench` drives the load "
                    "(default: --bin; it needs --unique-prompts)")
    ap.add_argument("--gguf", help="the GGUF file both servers load (default: the model's cached "
                    "file from models.toml)")
    ap.add_argument("--model-id", help="model id: the name in requests, and without --gguf the "
                    "models.toml entry whose file is served (default: models.toml's default_model)")
    ap.add_argument("--models", type=Path, default=ROOT / "models.toml")
    ap.add_argument("--requests", type=int, default=5, help="streams of the single-stream and the "
                    "fresh-prompt runs; the concurrent run sends twice as many (default 5)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                    help="llama.cpp's --n_threads (default: the CPUs)")
    ap.add_argument("--n-ctx", type=int, default=4096, help="llama.cpp's context size")
    ap.add_argument("--servers", default="ptr,llama", help="which to run: ptr, llama or both")
    ap.add_argument("--venv", type=Path, default=CACHE / "venv-llama",
                    help="llama-cpp-python's venv (made on first use)")
    ap.add_argument("--llama-spec", default=LLAMA_SPEC, help="what pip installs into the venv")
    ap.add_argument("--out", type=Path, help="folder for the JSON reports, logs and table "
                    "(default: ~/.cache/ptr-server/bench-peer/<model>-<time>)")
    args = ap.parse_args()
    args.bin = str(Path(args.bin).expanduser().resolve())
    args.bench_bin = str(Path(args.bench_bin or args.bin).expanduser().resolve())
    for binary in {args.bin, args.bench_bin}:
        if not os.access(binary, os.X_OK):
            sys.exit(f"no ptr-server binary at {binary}: build it (`cargo build`)")
    if args.requests < 1 or args.concurrency < 1 or args.max_tokens < 1:
        sys.exit("--requests, --concurrency and --max-tokens must be at least 1")
    servers = {s.strip() for s in args.servers.split(",") if s.strip()}
    if not servers or servers - {"ptr", "llama"}:
        sys.exit("--servers takes ptr, llama or ptr,llama")
    if args.model_id is None:
        args.model_id = registry(args.models)["default_model"]
    gguf = resolve_gguf(args)
    out = (args.out or CACHE / "bench-peer" / f"{args.model_id}-{time.strftime('%Y%m%d-%H%M%S')}")
    out = out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)

    python = install_llama(args.venv.expanduser(), args.llama_spec) if "llama" in servers else None
    # SIGTERM (and SIGHUP) unwind like Ctrl-C, through the `finally` that stops the servers.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))

    results = {}
    try:
        if python is not None:
            info = subprocess.run([str(python), "-c", "import llama_cpp; print(llama_cpp."
                                   "llama_print_system_info().decode())"],
                                  stdout=subprocess.PIPE, text=True, timeout=120)
            (out / "llama.cpp-system-info.txt").write_text(info.stdout)
            log(f"llama.cpp: {info.stdout.strip()}")
        for name in ("ptr", "llama"):
            if name not in servers:
                continue
            server = start_ptr(args, gguf, out) if name == "ptr" else start_llama(
                args, python, gguf, out)
            try:
                results[name] = measure(args, server, out)
            finally:
                server.stop()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as e:
        log(f"error: {e}")
        return 1
    finally:
        Server.stop_all()

    ptr, llama = rows(results.get("ptr")), rows(results.get("llama"))
    text = table(args, gguf, ptr, llama)
    (out / "table.txt").write_text(text)
    summary = {"gguf": str(gguf), "model_id": args.model_id, "max_tokens": args.max_tokens,
               "requests": args.requests, "concurrency": args.concurrency,
               "threads": args.threads, "llama_spec": args.llama_spec,
               "ptr-server": ptr, "llama.cpp": llama}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(text, end="")
    log(f"reports, logs and table: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
