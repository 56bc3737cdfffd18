#!/usr/bin/env python3
"""Training speed of `ptr-server train` beside PyTorch + PEFT (`bench/peft_train.py`) on the same
GGUF, the same records and the same LoRA (r = 8, alpha = 16 on q, v, gate, up, down), one after
the other on this machine. Prints a table: steps timed, tokens, training tokens/s, ratio.

The records are PTR sample lines (thought weight 0, answer weight 1) of --min-chars to
--max-chars characters, about --max-seq-len tokens (a longer one is cut: PEFT drops its end,
ptr-server its earliest thought; tokens/s counts what was trained). The first step of each run is
not timed (allocators, kernels). Usage (or `make bench-train`):
  python3 bench/train_compare.py --bin PTR_SERVER --peft-python VENV/bin/python --gguf MODEL.gguf
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from ptr_sample_jsonl import chat_line

HERE = os.path.dirname(os.path.abspath(__file__))


def records(sample: str, n: int, lo: int, hi: int) -> list:
    """The first n sample records whose text is between lo and hi characters long."""
    fits = (r for r in json.load(open(sample))
            if lo <= len(r["question"]) + len(r["output1"]) + len(r["output2"]) <= hi)
    return [chat_line(r) for _, r in zip(range(n), fits)]


def timed(steps: list) -> tuple:
    """(steps, tokens, tokens/s) over every step but the first, from per-step (tokens, seconds)."""
    rest = steps[1:]
    tokens = sum(t for t, _ in rest)
    secs = sum(s for _, s in rest)
    return len(rest), tokens, tokens / secs if secs else 0.0


def steps_of(name: str, cmd: list, loss_key: str) -> tuple:
    """Runs a trainer that prints a JSON line per step; (steps, tokens, tokens/s) as `timed`."""
    steps = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        e = json.loads(line)
        if e.get("tokens") and "tokens_per_second" in e:
            steps.append((e["tokens"], e["tokens"] / e["tokens_per_second"]))
            print(f"  {name} step {len(steps)}: {e['tokens']} tokens, {e['tokens_per_second']:.1f} "
                  f"tok/s, loss {e[loss_key]:.3f}", file=sys.stderr)
    if proc.wait() != 0:
        sys.exit(f"{name} failed ({proc.returncode})")
    return timed(steps)


def run_ptr(args, data: str, work: str) -> tuple:
    config = {
        "base_model_path": args.gguf, "training_file": data, "output_dir": os.path.join(work, "ptr"),
        "hyperparameters": {"max_steps": args.steps, "batch_size": 1, "max_seq_len": args.max_seq_len,
                            "learning_rate": 1e-4, "warmup_steps": 0, "checkpoint_every": 0,
                            "n_epochs": 100},
    }
    path = os.path.join(work, "train.json")
    json.dump(config, open(path, "w"))
    return steps_of("ptr-server", [args.bin, "train", "--config", path], "train_loss")


def run_peft(args, data: str) -> tuple:
    return steps_of("PEFT", [
        args.peft_python, os.path.join(HERE, "peft_train.py"), "--gguf", args.gguf, "--data", data,
        "--steps", str(args.steps), "--max-seq-len", str(args.max_seq_len),
        "--threads", str(args.threads), "--device", "cpu"], "loss")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the ptr-server binary")
    ap.add_argument("--peft-python", required=True, help="a Python with torch, transformers, peft, gguf")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--sample", default=os.path.join(HERE, "../../shared/data/ptr/ptr_thought_dataset_sampled.json"))
    ap.add_argument("--records", type=int, default=8)
    ap.add_argument("--steps", type=int, default=9, help="steps per run (the first is not timed)")
    ap.add_argument("--max-seq-len", type=int, default=512)
    ap.add_argument("--min-chars", type=int, default=1400)
    ap.add_argument("--max-chars", type=int, default=1900)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    lines = records(args.sample, args.records, args.min_chars, args.max_chars)
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "train.jsonl")
        with open(data, "w") as f:
            f.writelines(json.dumps(l) + "\n" for l in lines)
        print(f"{len(lines)} records of {args.min_chars}-{args.max_chars} characters, max_seq_len "
              f"{args.max_seq_len}, {args.steps} steps of batch 1, {args.threads} threads", file=sys.stderr)
        results = {}
        for name, run in [("ptr-server train (candle)", lambda: run_ptr(args, data, work)),
                          ("PyTorch + PEFT", lambda: run_peft(args, data))]:
            t0 = time.time()
            results[name] = run() + (time.time() - t0,)
    base = results["PyTorch + PEFT"][2]
    print(f"| trainer | steps timed | tokens | training tokens/s | × PEFT | wall s |")
    print(f"|---|---|---|---|---|---|")
    for name, (steps, tokens, tps, wall) in results.items():
        print(f"| {name} | {steps} | {tokens} | {tps:.1f} | {tps / base:.2f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
