"""Drives ptr-server's admin API with the official OpenAI Python SDK (base_url …/admin/v1).

Usage: python openai_admin_check.py BASE_URL ADMIN_TOKEN MODEL
Uploads a fine-tune file with `client.files.create`, waits for processing, reads it back, lists
it, sees a bad file rejected with the line named, and sees typed errors for a bad fine-tuning
job. Prints one JSON object; exits non-zero on any failed expectation.
"""
import io
import json
import sys
import time

from openai import OpenAI, BadRequestError, NotFoundError, AuthenticationError

LINE = {"messages": [
    {"role": "user", "content": "Name a primary color."},
    {"role": "assistant", "content": "Green?", "weight": 0},
    {"role": "user", "content": "Please further think about and give me a more precise and professional answer."},
    {"role": "assistant", "content": "Red is a primary color.", "weight": 1},
]}


def main() -> None:
    base, token, model = sys.argv[1], sys.argv[2], sys.argv[3]
    client = OpenAI(base_url=f"{base}/admin/v1", api_key=token, max_retries=0)
    out = {}
    content = (json.dumps(LINE) + "\n") * 2
    f = client.files.create(file=("train.jsonl", io.BytesIO(content.encode())), purpose="fine-tune")
    for _ in range(50):
        f = client.files.retrieve(f.id)
        if f.status in ("processed", "error"):
            break
        time.sleep(0.1)
    out["status"] = f.status
    assert f.status == "processed", f
    assert f.bytes == len(content.encode()) and f.filename == "train.jsonl", f
    back = client.files.content(f.id).read().decode()
    assert back == content, back
    out["listed"] = f.id in [x.id for x in client.files.list(purpose="fine-tune").data]
    assert out["listed"]

    bad = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 3}]})
    b = client.files.create(file=("bad.jsonl", io.BytesIO((json.dumps(LINE) + "\n" + bad + "\n").encode())), purpose="fine-tune")
    out["bad_status"], out["bad_details"] = b.status, b.status_details
    assert b.status == "error" and b.status_details.startswith("line 2:"), b

    try:
        client.fine_tuning.jobs.create(model="no-such-model", training_file=f.id)
        raise AssertionError("an unknown model was accepted")
    except BadRequestError as e:
        out["bad_model_param"] = e.body["param"]
    try:
        client.fine_tuning.jobs.create(model=model, training_file=b.id)
        raise AssertionError("a file that failed validation was accepted")
    except BadRequestError as e:
        out["bad_file_param"] = e.body["param"]
    out["jobs"] = len(client.fine_tuning.jobs.list().data)
    try:
        client.fine_tuning.jobs.retrieve("ftjob-nope")
        raise AssertionError("a missing job was found")
    except NotFoundError:
        out["missing_job"] = "not_found"
    try:
        OpenAI(base_url=f"{base}/admin/v1", api_key="wrong-token", max_retries=0).files.list()
        raise AssertionError("a wrong token was accepted")
    except AuthenticationError:
        out["wrong_token"] = 401
    client.files.delete(f.id)
    try:
        client.files.retrieve(f.id)
        raise AssertionError("a deleted file was found")
    except NotFoundError:
        out["deleted"] = True
    print(json.dumps(out))


if __name__ == "__main__":
    main()
