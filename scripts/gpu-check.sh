#!/usr/bin/env bash
# There, on a lent GPU machine: joins what scripts/gpu-pack.sh carried and runs the checks of
# README "Run on a GPU" on --device cuda, those named in CHECKS (model.env sets it):
#   serve  a chat, a 3-round refinement, `bench` at 1, 8 and 32 streams, `bench-refine` (a second
#          server with --prefix-cache 0 for the cold side)
#   train  a short fine-tuning run with its tokens/s
#   ptr    the PTR-model pipeline (README "Making a PTR model") on the carried base model: the
#          authors' sample, the thought-mask fine-tune and its no-mask ablation, base and tuned
#          models on the four eval tasks, bounded so that it reaches its report
# Logs and figures go to $OUT (they come back).
set -uo pipefail
DEADLINE=$(( $(date +%s) + ${BUDGET:-540} ))   # the call's limit (560 s) less a margin for $OUT
REPO=$PWD
D=${PTRDEV:-/root/ptrdev}
OUT=${OUT:-/tmp/ptr-gpu-out}
mkdir -p "$OUT" && cd "$D" || exit 1
M=smollm2-135m-instruct FILE=SmolLM2-135M-Instruct.Q4_1.gguf CHECKS=serve,train,ptr
[ -f model.env ] && . ./model.env
CHECKS=${ONLY:-$CHECKS}
if ls model.part* >/dev/null 2>&1; then
  cat $(ls model.part* | sort -V) >model.gguf && sha256sum -c model.sha256 || exit 1
  mkdir -p "cache/$M" && mv model.gguf "cache/$M/$FILE" && rm model.part*
fi
[ -x ptr-server ] || { xz -dc ptr-server-cuda.xz >ptr-server && chmod +x ptr-server; }
SP=$(/opt/torch/.venv/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export LD_LIBRARY_PATH="$SP/nvidia/cu13/lib:/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ldd ./ptr-server | grep 'not found' && exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
echo "base model $M ($FILE), checks: $CHECKS"
has() { case ",$CHECKS," in *",$1,"*) return 0 ;; esac; return 1; }

serve() { # serve PORT [FLAGS...]: starts a server on the GPU, waits until ready
  local port=$1; shift
  ./ptr-server serve --device cuda --models "$REPO/models.toml" --model-cache cache \
    --data-dir "data-$port" --port "$port" "$@" >"$OUT/server-$port.log" 2>&1 &
  for _ in $(seq 180); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null && return 0; sleep 1; done
  tail -30 "$OUT/server-$port.log"; return 1
}
if has serve; then
t0=$(date +%s.%N)
serve 8080 || exit 1
echo "ready after $(echo "$(date +%s.%N) - $t0" | bc) s" | tee "$OUT/ready.txt"
serve 8081 --prefix-cache 0 || exit 1

echo "== chat"
curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' -d '{
  "messages": [{"role": "user", "content": "Name three colours."}], "temperature": 0, "max_tokens": 32}' \
  | tee "$OUT/chat.json"; echo
echo "== 3-round refinement (128-token rounds)"
s=$(date +%s.%N)
curl -sN http://127.0.0.1:8080/v1/refinements -H 'content-type: application/json' -d '{
  "messages": [{"role": "user", "content": "What is 17 * 23? Think step by step."}],
  "temperature": 0, "max_tokens": 128, "refinement": {"rounds": 3}}' >"$OUT/refine.sse"
echo "$(grep -c '^event: round.completed' "$OUT/refine.sse") rounds in $(echo "$(date +%s.%N) - $s" | bc) s"
for c in 1 8 32; do
  echo "== bench: $c concurrent streams"
  ./ptr-server bench --url http://127.0.0.1:8080 --model $M --requests $((c < 4 ? 8 : c * 2)) \
    --concurrency $c --stream --max-tokens 128 | tee "$OUT/bench-$c.txt"
done
echo "== bench-refine"
./ptr-server bench-refine --url http://127.0.0.1:8080 --cold-url http://127.0.0.1:8081 --model $M \
  | tee "$OUT/bench-refine.txt"
kill %1 %2 2>/dev/null; wait 2>/dev/null
fi

if has train; then
echo "== fine-tuning on the GPU (LoRA r=8, 8 PTR records, 20 steps)"
python3 "$REPO/bench/ptr_sample_jsonl.py" "$REPO/tests/data/ptr/ptr_sample_short.json" train.jsonl 8
cat >train.json <<JSON
{"base_model_path": "cache/$M/$FILE", "training_file": "train.jsonl",
 "output_dir": "ft", "hyperparameters": {"max_steps": 20, "checkpoint_every": 20, "max_seq_len": 512}}
JSON
timeout 120 ./ptr-server train --config train.json --device cuda >"$OUT/train.jsonl" 2>"$OUT/train.log"
echo "train exit $?"
python3 - "$OUT/train.jsonl" <<'PY'
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"step"' in l]
steps = [s for s in steps if s.get("event", s.get("type")) == "step" or "tokens_per_second" in s]
for s in steps[-3:]:
    print({k: s.get(k) for k in ("step", "train_loss", "tokens_per_second")})
PY
tail -3 "$OUT/train.jsonl"
fi

# Bounded to end inside the call: each fine-tune stops at PTR_STEPS steps (the sample is ~320
# records, so 320 is one epoch), the evaluation starts no new item after PTR_EVAL_MINUTES (items
# are asked item-major: every system gets the same items), the server admits 64 generations at
# once (the eval asks 32 items at a time), and what is left of the call's time is the timeout.
# With the other checks before it (SmolLM2), less of each.
if has ptr; then
  if has serve; then PTR_STEPS=${PTR_STEPS:-100} PTR_EVAL_MINUTES=${PTR_EVAL_MINUTES:-1.5}; fi
  echo "== PTR model on the GPU: $M (pipeline: sample -> ptr + nomask fine-tunes -> eval on 4 tasks)"
  cat >ptr-model.json <<JSON
{"model": "$M", "import_files": ["data/ptr_thought_dataset_sampled.json"],
 "fine_tuning": {"hyperparameters": {"n_epochs": 1}, "seed": 42,
   "ptr": {"max_seq_len": 1024, "learning_rate": 0.0001, "warmup_steps": 10, "checkpoint_every": 100,
           "max_steps": ${PTR_STEPS:-320}, "rounds": 3}},
 "variants": [{"name": "ptr"}, {"name": "nomask", "thought_weight": 1.0}],
 "eval": {"tasks": [{"task": "gsm8k", "file": "data/gsm8k_test.jsonl"},
   {"task": "arc", "file": "data/arc_challenge_test.jsonl"},
   {"task": "commonsenseqa", "file": "data/commonsenseqa_dev.jsonl"},
   {"task": "winogrande", "file": "data/winogrande_dev.jsonl"}],
   "rounds": 3, "limit": 100, "max_tokens": 256, "concurrency": 32,
   "time_limit_minutes": ${PTR_EVAL_MINUTES:-4}}}
JSON
  s=$(date +%s)
  PTR_MAX_CONCURRENT=64 timeout $((DEADLINE - $(date +%s))) ./ptr-server ptr-model --spec ptr-model.json \
    --out ptr-run --device cuda --models "$REPO/models.toml" --model-cache cache >"$OUT/ptr-model.log" 2>&1
  echo "ptr-model exit $? after $(( $(date +%s) - s )) s"
  tr '\r' '\n' <"$OUT/ptr-model.log" | grep -E '^stage|tokens_per_second|report' | tail -20
  for f in ptr-run/.state/fine_tuning/*/trainer/metrics.csv; do
    [ -f "$f" ] && { echo "$f: $(($(wc -l <"$f") - 1)) steps, last: $(tail -1 "$f")"; cp "$f" "$OUT/$(basename "$(dirname "$(dirname "$f")")").csv"; }
  done
  cp -r ptr-run/report "$OUT/ptr-model-report" 2>/dev/null && head -80 "$OUT/ptr-model-report/report.md"
fi
