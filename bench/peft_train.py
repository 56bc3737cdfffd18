#!/usr/bin/env python3
"""PyTorch + PEFT reference for `ptr-server train`: the same GGUF model (de-quantised by
transformers' GGUF loader), the same chat JSONL, LoRA r=8/alpha=16 on q,v,gate,up,down, AdamW
betas (0.98, 0.999), thought-masked loss (labels only on weight-1 assistant turns and their
<|im_end|>), sequences cut to --max-seq-len. Prints training tokens/s.

Not a CI dependency: needs `torch`, `transformers`, `peft`, `gguf` (pip). Example:
  python bench/peft_train.py --gguf ~/.cache/ptr-server/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
      --data train.jsonl --steps 10 --threads 2
"""
import argparse
import json
import os
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

INSTRUCTION_NEWLINE = "\n"  # earlier answers are served with a trailing newline (refine::layout)


def encode(tok, messages, max_len):
    """Token ids and labels (-100 = no loss), ChatML segments tokenised as one text."""
    served = []
    for i, m in enumerate(messages):
        m = dict(m)
        if m["role"] == "assistant" and i < len(messages) - 1:
            m["content"] += INSTRUCTION_NEWLINE
        served.append(m)
    text = tok.apply_chat_template([{"role": m["role"], "content": m["content"]} for m in served], tokenize=False)
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    spans, at = [], 0
    for m in served:
        start = text.index(m["content"], at)
        end = start + len(m["content"]) + len("<|im_end|>")
        if m["role"] == "assistant" and m.get("weight", 1) == 1:
            spans.append((start, end))
        at = end
    labels = [t if any(s < e_ <= e for s, e in spans) else -100
              for t, (_, e_) in zip(enc["input_ids"], enc["offset_mapping"])]
    return enc["input_ids"][:max_len], labels[:max_len]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--max-seq-len", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    d, f = os.path.split(args.gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).to(args.device)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.98, 0.999))
    lines = [json.loads(l) for l in open(args.data) if l.strip()]
    data = [encode(tok, l["messages"], args.max_seq_len) for l in lines]
    model.train()
    tokens, start = 0, None
    for step in range(args.steps):
        ids, labels = data[step % len(data)]
        if step == 1:  # the first step warms up allocators and kernels
            tokens, start = 0, time.time()
        t0 = time.time()
        out = model(input_ids=torch.tensor([ids], device=args.device), labels=torch.tensor([labels], device=args.device))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        tokens += len(ids)
        dt = time.time() - t0
        print(json.dumps({"step": step + 1, "loss": out.loss.item(), "tokens": len(ids), "tokens_per_second": len(ids) / dt}), flush=True)
    if start is not None:
        print(json.dumps({"mean_tokens_per_second": tokens / (time.time() - start)}))


if __name__ == "__main__":
    main()
