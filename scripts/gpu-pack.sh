#!/usr/bin/env bash
# Here: packs the CUDA binary (make cuda-build) and the default model for a lent GPU machine,
# which takes at most 64 MiB per call: .dist/c1 = the xz'd binary + the model's first 40 MiB,
# .dist/c2 = the rest of the model + its sha256. scripts/gpu-check.sh runs there.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-$HOME/.cache/ptr-server/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}
[ -f .dist/ptr-server-cuda.xz ] || { echo "no .dist/ptr-server-cuda.xz: run make cuda-build" >&2; exit 1; }
rm -rf .dist/c1 .dist/c2 && mkdir -p .dist/c1 .dist/c2
cp .dist/ptr-server-cuda.xz .dist/c1/
head -c $((40 << 20)) "$MODEL" >.dist/c1/model.part1
tail -c +$(((40 << 20) + 1)) "$MODEL" >.dist/c2/model.part2
echo "$(sha256sum <"$MODEL" | cut -d' ' -f1)  model.gguf" >.dist/c2/model.sha256
# The PTR-model run's inputs (../shared is not carried): the authors' sample and the eval sets.
SHARED=${SHARED:-../shared/data}
mkdir -p .dist/c2/data
cp "$SHARED/ptr/ptr_thought_dataset_sampled.json" "$SHARED"/eval/{gsm8k_test,arc_challenge_test,commonsenseqa_dev,winogrande_dev}.jsonl .dist/c2/data/
du -sh .dist/c1 .dist/c2
cat <<'USAGE'
With the device tool, back to back (the machine goes back after 30 s idle):
  1. carry [".dist/c1"]: mkdir -p /root/ptrdev && cp .dist/c1/* /root/ptrdev/
  2. carry [".dist/c2"]: cp .dist/c2/* /root/ptrdev/ && bash scripts/gpu-check.sh   (timeout 540)
USAGE
