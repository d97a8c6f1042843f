"""Drives the official openai Python SDK against a MidStream gateway and prints what it saw.

Usage: drive.py CASE BASE_URL
CASE is one of: naive, helper, create, error. Prints one JSON object on stdout; the Rust test
(crates/midstream-gateway/tests/sdk.rs) makes the assertions.
"""

import json
import sys

import openai
from openai import OpenAI

MESSAGES = [{"role": "user", "content": "What's the weather in Paris? Also schedule a meeting with John next Wednesday at 10 AM."}]


def midstream_of(obj):
    extra = getattr(obj, "model_extra", None) or {}
    return extra.get("midstream")


def naive(client):
    text, events = "", []
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        # The loop every tutorial shows: must keep working with injected events.
        text += chunk.choices[0].delta.content or ""
        event = midstream_of(chunk)
        if event:
            events.append(event)
    return {"text": text, "events": events}


def helper(client):
    text, events = "", []
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for event in stream:
            if event.type == "content.delta":
                text += event.delta
            elif event.type == "chunk":
                found = midstream_of(event.chunk)
                if found:
                    events.append(found)
        final = stream.get_final_completion()
    return {"text": text, "final_text": final.choices[0].message.content, "events": events}


def create(client):
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    extra = midstream_of(completion) or {}
    return {"text": completion.choices[0].message.content, "events": extra.get("events", [])}


def error(client):
    text = ""
    try:
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    except openai.APIError as e:
        return {"text": text, "error": type(e).__name__, "message": str(e)}
    return {"text": text, "error": None}


def main():
    case, base_url = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key="sk-test-not-used", max_retries=0, timeout=30)
    result = {"naive": naive, "helper": helper, "create": create, "error": error}[case](client)
    result["sdk_version"] = openai.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
