"""A fine-tuning job driven end to end with the official OpenAI Python SDK, in two phases around a
SIGKILL of the server (the Rust test kills and restarts it between them).

Usage:
  python openai_finetune_check.py start BASE_URL ADMIN_TOKEN MODEL SAMPLE_JSON
      converts the 8 records of the PTR authors' sample ({question, output1, output2}) into chat
      lines (thought weight 0, answer weight 1), uploads them with `files.create`, waits for
      processing and creates a job with `fine_tuning.jobs.create` (PTR settings in `extra_body`).
  python openai_finetune_check.py finish BASE_URL ADMIN_TOKEN JOB_ID
      waits for the job to succeed, reads its events (every page) and checkpoints, loads the tuned
      model through the admin model route, asks it for a chat completion and a 2-round refinement
      on the public API, unloads it, then starts a second job and cancels it while it trains.
Each phase prints one JSON object; any failed expectation exits non-zero.
"""
import io
import json
import sys
import time

from openai import OpenAI

INSTRUCTION = "Please further think about and give me a more precise and professional answer."
EPOCHS, BATCH, RECORDS = 3, 2, 8
STEPS_PER_EPOCH = RECORDS // BATCH


def admin_client(base: str, token: str) -> OpenAI:
    return OpenAI(base_url=f"{base}/admin/v1", api_key=token, max_retries=0)


def training_lines(sample_path: str) -> str:
    records = json.load(open(sample_path))[:RECORDS]
    assert len(records) == RECORDS, len(records)
    lines = []
    for r in records:
        messages = [
            {"role": "user", "content": r["question"]},
            {"role": "assistant", "content": r["output1"], "weight": 0},
            {"role": "user", "content": INSTRUCTION},
            {"role": "assistant", "content": r["output2"], "weight": 1},
        ]
        lines.append(json.dumps({"messages": messages}) + "\n")
    return "".join(lines)


def wait_processed(client: OpenAI, file_id: str):
    for _ in range(100):
        f = client.files.retrieve(file_id)
        if f.status in ("processed", "error"):
            return f
        time.sleep(0.1)
    raise AssertionError(f"file {file_id} never processed")


def start(base: str, token: str, model: str, sample: str) -> dict:
    client = admin_client(base, token)
    content = training_lines(sample)
    f = client.files.create(file=("ptr.jsonl", io.BytesIO(content.encode())), purpose="fine-tune")
    f = wait_processed(client, f.id)
    assert f.status == "processed", f
    job = client.fine_tuning.jobs.create(
        model=model,
        training_file=f.id,
        suffix="e2e",
        seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": EPOCHS, "batch_size": BATCH}}},
        extra_body={"ptr": {"checkpoint_every": STEPS_PER_EPOCH, "max_seq_len": 384,
                            "learning_rate": 0.003, "warmup_steps": 2, "rounds": 2}},
    )
    assert job.object == "fine_tuning.job" and job.status in ("validating_files", "queued", "running"), job
    return {"job": job.id, "file": f.id}


def all_events(client: OpenAI, job_id: str) -> list:
    """Every event of a job, oldest first, read page by page (the SDK's auto-pagination)."""
    return list(reversed(list(client.fine_tuning.jobs.list_events(job_id, limit=5))))


def wait_terminal(client: OpenAI, job_id: str, timeout_s: float = 900):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end in {timeout_s} s")


def epoch_losses(events: list) -> list:
    """The mean training loss of each epoch (the last report of each step: a resumed run repeats
    the steps after its checkpoint)."""
    loss = {}
    for e in events:
        if e.type == "metrics" and isinstance((e.data or {}).get("train_loss"), (int, float)):
            loss[e.data["step"]] = e.data["train_loss"]
    assert sorted(loss) == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1)), sorted(loss)
    return [sum(loss[s] for s in range(k * STEPS_PER_EPOCH + 1, (k + 1) * STEPS_PER_EPOCH + 1))
            / STEPS_PER_EPOCH for k in range(EPOCHS)]


def cancel_while_training(client: OpenAI, model: str, file_id: str) -> dict:
    job = client.fine_tuning.jobs.create(
        model=model, training_file=file_id, suffix="cancel",
        extra_body={"ptr": {"max_steps": 500, "checkpoint_every": 500, "max_seq_len": 384}},
    )
    deadline = time.time() + 300
    while not any(e.type == "metrics" for e in all_events(client, job.id)):
        assert time.time() < deadline, "the second job never trained a step"
        assert client.fine_tuning.jobs.retrieve(job.id).status not in ("failed", "succeeded")
        time.sleep(0.5)
    asked = time.time()
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    job = wait_terminal(client, job.id, 60)
    took = time.time() - asked
    steps = sum(e.type == "metrics" for e in all_events(client, job.id))
    time.sleep(3)
    steps_later = sum(e.type == "metrics" for e in all_events(client, job.id))
    assert job.status == "cancelled" and job.fine_tuned_model is None, job
    assert steps_later == steps, "the trainer went on after cancel"
    return {"cancel_answer": cancelled.status, "status": job.status,
            "cancel_secs": round(took, 1)}


def finish(base: str, token: str, job_id: str) -> dict:
    client = admin_client(base, token)
    job = wait_terminal(client, job_id)
    assert job.status == "succeeded", job
    out = {"status": job.status, "fine_tuned_model": job.fine_tuned_model,
           "trained_tokens": job.trained_tokens, "result_files": len(job.result_files)}
    events = all_events(client, job_id)
    messages = [e.message for e in events]
    out["restarted_logged"] = any("restarted" in m for m in messages)
    resumed = [e for e in events if e.message.startswith("Training from step")]
    out["resumed_from_step"] = resumed[-1].data["step"] if resumed else None
    out["epoch_losses"] = epoch_losses(events)
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job_id)
    out["checkpoint_steps"] = sorted(c.step_number for c in checkpoints.data)
    assert all(c.fine_tuned_model_checkpoint for c in checkpoints.data), checkpoints
    # OpenAI's checkpoint metrics, typed by the SDK: the step's own, the training loss known.
    assert all(c.metrics.step == c.step_number and c.metrics.train_loss is not None
               for c in checkpoints.data), checkpoints

    tuned = job.fine_tuned_model
    loaded = client.post(f"/models/{tuned}/load", body={}, cast_to=object)
    out["load_status"] = loaded["status"]
    public = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    out["listed"] = tuned in [m.id for m in public.models.list().data]
    ask = [{"role": "user", "content": "What is 12 plus 30?"}]
    chat = public.chat.completions.create(model=tuned, messages=ask, temperature=0, max_tokens=24)
    out["chat"] = chat.choices[0].message.content
    # The job's `ptr.rounds` (2) is the tuned model's default number of refinement rounds.
    out["default_rounds"] = len(chat.model_extra["refinement"]["rounds"])
    refined = public.chat.completions.create(
        model=tuned, messages=ask, temperature=0, max_tokens=24,
        extra_body={"refinement": {"rounds": 2}},
    )
    rounds = refined.model_extra["refinement"]["rounds"]
    out["refinement_rounds"] = [r["content"] for r in rounds]
    assert refined.choices[0].message.content == rounds[-1]["content"], refined
    out["unload_status"] = client.post(f"/models/{tuned}/unload", body={}, cast_to=object)["status"]

    out["cancel"] = cancel_while_training(client, job.model, job.training_file)
    return out


def main() -> None:
    phase, args = sys.argv[1], sys.argv[2:]
    result = start(*args) if phase == "start" else finish(*args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
