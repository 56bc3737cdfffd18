"""Drives a running ptr-server with the official OpenAI Python SDK.

Usage: python openai_sdk_check.py BASE_URL MODEL
Prints one JSON object with what the SDK saw; exits non-zero on any failed expectation.
"""
import json
import sys

from openai import OpenAI, BadRequestError, NotFoundError


def main() -> None:
    base, model = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    ask = [{"role": "user", "content": "Write one sentence about cats."}]
    out = {}

    models = client.models.list()
    out["models"] = [m.id for m in models.data]
    assert model in out["models"], out

    plain = client.chat.completions.create(model=model, messages=ask, temperature=0, max_tokens=24)
    out["plain"] = plain.choices[0].message.content
    assert out["plain"], "empty completion"
    assert plain.choices[0].finish_reason in ("stop", "length")
    assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens

    pieces, usage = [], None
    stream = client.chat.completions.create(
        model=model, messages=ask, temperature=0, max_tokens=24, stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
    out["streamed"] = "".join(pieces)
    assert out["streamed"] == out["plain"], out
    assert usage is not None and usage.completion_tokens == plain.usage.completion_tokens

    refined = client.chat.completions.create(
        model=model, messages=ask, temperature=0, max_tokens=24,
        extra_body={"refinement": {"rounds": 2}},
    )
    rounds = refined.model_extra["refinement"]["rounds"]
    assert len(rounds) == 2, rounds
    assert refined.choices[0].message.content == rounds[1]["content"]

    pieces = []
    stream = client.chat.completions.create(
        model=model, messages=ask, temperature=0, max_tokens=24, stream=True,
        extra_body={"refinement": {"rounds": 2}},
    )
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
    out["refined_streamed"] = "".join(pieces)
    assert out["refined_streamed"] == rounds[1]["content"], out

    try:
        client.chat.completions.create(model=model, messages=ask, temperature=-1)
        raise AssertionError("temperature -1 was accepted")
    except BadRequestError as e:
        out["bad_request_param"] = e.body.get("param")
    try:
        client.chat.completions.create(model="no-such-model", messages=ask)
        raise AssertionError("an unknown model was accepted")
    except NotFoundError as e:
        out["not_found_code"] = e.body.get("code")

    print(json.dumps(out))


if __name__ == "__main__":
    main()
