#!/usr/bin/env bash
# Here: packs the CUDA binary (make cuda-build), a base model and the PTR run's data for a lent GPU
# machine, which takes at most 64 MiB per call (the working tree, ~3 MiB, travels too): .dist/c1 =
# the xz'd binary, the data and the model's first bytes, .dist/c2 ... .dist/cN = the rest of the
# model in parts of 58 MiB, the last one with the model's sha256 and model.env (its id and file).
# scripts/gpu-check.sh runs there, after the last call has copied its folder.
#   bash scripts/gpu-pack.sh                    SmolLM2 (2 calls): every check of gpu-check.sh
#   BASE=qwen2.5-coder-0.5b-instruct bash scripts/gpu-pack.sh
#                                               Qwen 0.5B (about 8 calls): the PTR run on it alone
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-smollm2-135m-instruct}
case "$BASE" in
  smollm2-135m-instruct) FILE=SmolLM2-135M-Instruct.Q4_1.gguf; CHECKS=${CHECKS:-serve,train,ptr} ;;
  qwen2.5-coder-0.5b-instruct) FILE=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; CHECKS=${CHECKS:-ptr} ;;
  *) echo "BASE must be smollm2-135m-instruct or qwen2.5-coder-0.5b-instruct" >&2; exit 2 ;;
esac
# The published file (the fetch's source): the GPU serves it as published, or makes the
# requantized copy models.toml pins from it, offline.
MODEL=${MODEL:-$HOME/.cache/ptr-server/models/$BASE/$FILE}
[ -f .dist/ptr-server-cuda.xz ] || { echo "no .dist/ptr-server-cuda.xz: run make cuda-build" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "no $MODEL: run ptr-server fetch-model $BASE first" >&2; exit 1; }
rm -rf .dist/c[0-9]* && mkdir -p .dist/c1/data
cp .dist/ptr-server-cuda.xz .dist/c1/
# The PTR-model run's inputs (../shared is not carried): the authors' sample and the eval sets.
SHARED=${SHARED:-../shared/data}
cp "$SHARED/ptr/ptr_thought_dataset_sampled.json" "$SHARED"/eval/{gsm8k_test,arc_challenge_test,commonsenseqa_dev,winogrande_dev}.jsonl .dist/c1/data/
MiB=$((1 << 20))
first=$((58 * MiB - $(du -sb .dist/c1 | cut -f1)))
size=$(stat -c %s "$MODEL")
head -c "$first" "$MODEL" >.dist/c1/model.part1
n=1 off=$first
while [ "$off" -lt "$size" ]; do
  n=$((n + 1)); mkdir -p ".dist/c$n"
  tail -c +$((off + 1)) "$MODEL" | head -c $((58 * MiB)) >".dist/c$n/model.part$n"
  off=$((off + 58 * MiB))
done
echo "$(sha256sum <"$MODEL" | cut -d' ' -f1)  model.gguf" >".dist/c$n/model.sha256"
printf 'M=%s\nFILE=%s\nCHECKS=%s\n' "$BASE" "$FILE" "$CHECKS" >".dist/c$n/model.env"
du -sh .dist/c[0-9]*
cat <<USAGE
With the device tool, back to back (the machine goes back after 30 s idle), $n calls:
  K = 1..$((n - 1)): carry [".dist/cK"]: mkdir -p /root/ptrdev && cp -r .dist/cK/. /root/ptrdev/
  K = $n:      carry [".dist/c$n"]: cp -r .dist/c$n/. /root/ptrdev/ && bash scripts/gpu-check.sh   (timeout 560)
USAGE
