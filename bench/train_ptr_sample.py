#!/usr/bin/env python3
"""The inverse of ptr_sample_jsonl.py: turns a dataset job's training file (`train.jsonl`, one chat
line per accepted record) into PTR-sample records ({question, output1, output2}, the authors'
format), so records generated once can be imported by a later pipeline (`import_files`) beside the
authors' sample without generating them again. A line's first user turn is the question, its
first weight-0 assistant turn the thought, its last assistant turn the answer; a line with more
than one thought keeps the last one (the PTR format holds one). Usage:
train_ptr_sample.py TRAIN.jsonl OUT.json"""
import json
import sys


def sample_record(line: dict) -> dict:
    """One training line as a PTR-sample record."""
    messages = line["messages"]
    question = next(m["content"] for m in messages if m["role"] == "user")
    assistant = [m for m in messages if m["role"] == "assistant"]
    thoughts = [m["content"] for m in assistant[:-1] if m.get("weight", 1) == 0]
    if not thoughts:
        raise ValueError("a training line without a thought")
    return {"question": question, "output1": thoughts[-1], "output2": assistant[-1]["content"]}


if __name__ == "__main__":
    records = [sample_record(json.loads(l)) for l in open(sys.argv[1]) if l.strip()]
    with open(sys.argv[2], "w") as out:
        json.dump(records, out, indent=1, ensure_ascii=False)
    print(f"{len(records)} records -> {sys.argv[2]}")
