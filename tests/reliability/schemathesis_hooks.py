"""Schemathesis hooks for the reliability suite (loaded through SCHEMATHESIS_HOOKS).

The model behind the server is real: a generated `max_tokens` of 7000 would make one example
generate for minutes on a CPU (and end in a 504 at the request deadline). Just before each call,
token counts the server would accept are lowered to a few tokens; values it must reject (below 1,
or at or above the model's context, REL_CONTEXT_LENGTH from /v1/models) are left alone, so that
validation is still fuzzed. The rest of the body is sent as generated.
"""

import os

import schemathesis

# Per-round token cap for generated requests.
CHEAP_TOKENS = 4
CONTEXT = int(os.environ["REL_CONTEXT_LENGTH"])


def _cheap(value):
    if isinstance(value, int) and not isinstance(value, bool) and CHEAP_TOKENS < value < CONTEXT:
        return CHEAP_TOKENS
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    for field in ("max_tokens", "max_completion_tokens"):
        if field in body:
            body[field] = _cheap(body[field])
    refinement = body.get("refinement")
    if isinstance(refinement, dict) and "max_total_tokens" in refinement:
        refinement["max_total_tokens"] = _cheap(refinement["max_total_tokens"])
