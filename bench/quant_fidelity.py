"""How closely a requantized GGUF follows the original: next-token agreement and KL divergence.

Both files run the same texts through llama.cpp (llama-cpp-python, the `make bench-peer` venv)
with every position's logits kept; per position it compares the top token and the KL divergence
KL(original || copy) of the next-token distributions. Texts: the questions of an eval file.

    python bench/quant_fidelity.py ORIGINAL.gguf COPY.gguf --data ../shared/data/eval/gsm8k_test.jsonl
"""

import argparse
import json

import numpy as np
from llama_cpp import Llama


def texts(path: str, limit: int) -> list[str]:
    out = []
    with open(path) as f:
        for line in f:
            item = json.loads(line)
            q = item.get("question")
            out.append(q["stem"] if isinstance(q, dict) else q or item.get("sentence", ""))
            if len(out) == limit:
                break
    return out


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def logits(model: Llama, tokens: list[int]) -> np.ndarray:
    model.reset()
    model.eval(tokens)
    return np.array(model.scores[: len(tokens)], dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("original")
    ap.add_argument("copy")
    ap.add_argument("--data", required=True, help="JSONL eval file (question / question.stem)")
    ap.add_argument("--limit", type=int, default=50)
    a = ap.parse_args()
    kw = dict(n_ctx=2048, n_threads=2, logits_all=True, verbose=False)
    original, copy = Llama(a.original, **kw), Llama(a.copy, **kw)
    agree = total = 0
    kls = []
    for text in texts(a.data, a.limit):
        tokens = original.tokenize(text.encode(), add_bos=True)
        p, q = log_softmax(logits(original, tokens)), log_softmax(logits(copy, tokens))
        agree += int((p.argmax(-1) == q.argmax(-1)).sum())
        total += len(tokens)
        kls.extend((np.exp(p) * (p - q)).sum(-1).tolist())
    kls = np.array(kls)
    print(f"positions {total}  top-1 agreement {agree / total:.2%}  "
          f"KL mean {kls.mean():.5f}  p99 {np.percentile(kls, 99):.5f}  max {kls.max():.5f}")


if __name__ == "__main__":
    main()
