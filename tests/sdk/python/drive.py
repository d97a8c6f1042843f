"""Drives the official openai Python SDK against a MidStream gateway and prints what it saw.

Usage: drive.py CASE BASE_URL
CASE is one of: naive, helper, create, error (chat completions); responses_naive,
responses_helper, responses_create, responses_events_off (the Responses API);
completions_naive, completions_create (legacy completions). Prints one JSON object on stdout; the Rust test
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


PROMPT = MESSAGES[0]["content"]


def responses_naive(client, **options):
    """`responses.create(stream=True)`: the loop the docs show, plus the gateway's events."""
    text, events, types = "", [], []
    for event in client.responses.create(model="gpt-4o-mini", input=PROMPT, stream=True, **options):
        types.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "keepalive" and midstream_of(event):
            events.append(midstream_of(event))
        elif event.type == "response.completed":
            final = event.response.output_text
    return {"text": text, "final_text": final, "events": events, "types": types}


def responses_helper(client):
    text, events = "", []
    with client.responses.stream(model="gpt-4o-mini", input=PROMPT) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
            elif event.type == "keepalive" and midstream_of(event):
                events.append(midstream_of(event))
        final = stream.get_final_response()
    return {"text": text, "final_text": final.output_text, "status": final.status, "events": events}


def responses_create(client):
    response = client.responses.create(model="gpt-4o-mini", input=PROMPT)
    extra = midstream_of(response) or {}
    return {"text": response.output_text, "status": response.status, "events": extra.get("events", [])}


def responses_events_off(client):
    return responses_naive(client, extra_headers={"X-Midstream-Events": "off"})


def completions_naive(client):
    """Legacy completions: the loop older clients run over `choices[0].text`."""
    text, events = "", []
    for chunk in client.completions.create(model="gpt-4o-mini", prompt=PROMPT, stream=True):
        if chunk.choices:
            text += chunk.choices[0].text
        if midstream_of(chunk):
            events.append(midstream_of(chunk))
    return {"text": text, "events": events}


def completions_create(client):
    completion = client.completions.create(model="gpt-4o-mini", prompt=PROMPT)
    extra = midstream_of(completion) or {}
    return {"text": completion.choices[0].text, "events": extra.get("events", [])}


def main():
    case, base_url = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key="sk-test-not-used", max_retries=0, timeout=30)
    cases = {
        "naive": naive,
        "helper": helper,
        "create": create,
        "error": error,
        "responses_naive": responses_naive,
        "responses_helper": responses_helper,
        "responses_create": responses_create,
        "responses_events_off": responses_events_off,
        "completions_naive": completions_naive,
        "completions_create": completions_create,
    }
    result = cases[case](client)
    result["sdk_version"] = openai.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
