"""Independent reference for ptr-server's Sentence-BERT embedder (src/embed/).

A plain numpy forward of all-MiniLM-L6-v2, written from the BERT paper / Hugging Face's
BertModel and sentence-transformers' modules.json (Transformer -> mean Pooling -> Normalize), on
the same model.safetensors and tokenizer.json the Rust code loads. It computes in float64, one
sentence at a time (no padding), so it checks the Rust forward, its batching, padding and
attention mask at once. It uses no torch and no code from the Rust side.

Set-up (once):
    python3 -m venv ~/.cache/ptr-server/venv-ref
    ~/.cache/ptr-server/venv-ref/bin/pip install numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.3

Run (after `ptr-server fetch-model all-minilm-l6-v2`):
    ~/.cache/ptr-server/venv-ref/bin/python tests/embed/reference.py \
        ~/.cache/ptr-server/models/all-minilm-l6-v2 > tests/embed/reference.json
"""

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

LONG = " ".join(
    f"Sentence {i} of a long answer keeps explaining the same idea in slightly different words."
    for i in range(40)
)

SENTENCES = [
    "The cat sits on the mat.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?",
    "Café déjà vu — naïve résumé; 東京 is Tokyo! 3.14159 ≈ π",
    LONG,  # far beyond 256 tokens: checks the truncation
    "",
]

erf = np.vectorize(math.erf)


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def linear(x, weights, name):
    return x @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]


def embed_one(ids, weights, config):
    n = len(ids)
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    head_dim = hidden // heads
    eps = config["layer_norm_eps"]
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][:n]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(
        x, weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], eps
    )
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"

        def split(t):
            return t.reshape(n, heads, head_dim).transpose(1, 0, 2)

        q = split(linear(x, weights, f"{p}.attention.self.query"))
        k = split(linear(x, weights, f"{p}.attention.self.key"))
        v = split(linear(x, weights, f"{p}.attention.self.value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_dim)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, hidden)
        attended = linear(context, weights, f"{p}.attention.output.dense")
        x = layer_norm(
            attended + x,
            weights[f"{p}.attention.output.LayerNorm.weight"],
            weights[f"{p}.attention.output.LayerNorm.bias"],
            eps,
        )
        h = linear(x, weights, f"{p}.intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))  # exact (erf) GELU: config "gelu"
        out = linear(h, weights, f"{p}.output.dense")
        x = layer_norm(
            out + x,
            weights[f"{p}.output.LayerNorm.weight"],
            weights[f"{p}.output.LayerNorm.bias"],
            eps,
        )
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def main():
    model_dir = Path(sys.argv[1])
    config = json.loads((model_dir / "config.json").read_text())
    max_len = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
    weights = {
        k: v.astype(np.float64) for k, v in load_file(model_dir / "model.safetensors").items()
    }
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_len)
    safetensors_sha = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    records = []
    for text in SENTENCES:
        ids = tokenizer.encode(text).ids
        vec = embed_one(np.array(ids), weights, config)
        records.append(
            {"text": text, "tokens": len(ids), "embedding": [round(float(f), 6) for f in vec]}
        )
    header = {
        "model": "all-minilm-l6-v2",
        "model_safetensors_sha256": safetensors_sha,
        "max_seq_length": max_len,
        "produced_by": "tests/embed/reference.py (numpy float64 forward)",
    }
    # One sentence per line keeps the fixture's diffs readable.
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    head = json.dumps(header, ensure_ascii=False, indent=1)[:-2]
    sys.stdout.write(head + ',\n "sentences": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n")

if __name__ == "__main__":
    main()
