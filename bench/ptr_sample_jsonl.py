#!/usr/bin/env python3
"""Converts the authors' PTR sample ({question, output1, output2}) into the trainer's chat JSONL:
user question -> assistant thought (weight 0) -> user refinement instruction -> assistant answer
(weight 1). Usage: ptr_sample_jsonl.py SAMPLE.json OUT.jsonl [N]"""
import json
import sys

INSTRUCTION = "Please further think about and give me a more precise and professional answer."


def chat_line(record: dict) -> dict:
    """One sample record as a training line."""
    return {"messages": [
        {"role": "user", "content": record["question"]},
        {"role": "assistant", "content": record["output1"], "weight": 0},
        {"role": "user", "content": INSTRUCTION},
        {"role": "assistant", "content": record["output2"], "weight": 1},
    ]}


if __name__ == "__main__":
    records = json.load(open(sys.argv[1]))
    n = int(sys.argv[3]) if len(sys.argv) > 3 else len(records)
    with open(sys.argv[2], "w") as out:
        for r in records[:n]:
            out.write(json.dumps(chat_line(r)) + "\n")
