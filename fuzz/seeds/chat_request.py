#!/usr/bin/env python3
"""Writes the seed corpus of the `chat_request` fuzz target, fuzz/corpus/chat_request/.

Hand-written request bodies: valid ones in the shapes the SDKs send (streaming with usage,
content parts, tools, unknown fields), and one at fault in each field the parser checks, in
the order it checks them. The target allows 4 messages.

Run from anywhere: `python3 fuzz/seeds/chat_request.py`. It replaces the directory's contents.
"""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "fuzz/corpus/chat_request"
out.mkdir(parents=True, exist_ok=True)
for old in out.iterdir():
    old.unlink()

USER = {"role": "user", "content": "What's the weather in Paris?"}
valid = {
    "minimal": {"model": "gpt-4o-mini", "messages": [USER]},
    "streaming-usage": {"model": "m", "messages": [USER], "stream": True, "stream_options": {"include_usage": True}},
    "conversation": {"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "42"},
    ]},
    "tools-and-unknown": {"model": "m", "messages": [USER], "tools": [{"type": "function", "function": {"name": "f"}}], "n": 1, "temperature": 0.7, "reasoning_effort": "low", "x-vendor": {"a": [1, 2.5e-3]}},
    "nulls": {"model": "m", "messages": [USER], "stream": None, "stream_options": None, "tools": None, "n": None},
}
faults = {
    "model-missing": {"messages": [USER]},
    "model-blank": {"model": " \t", "messages": [USER]},
    "model-number": {"model": 3, "messages": [USER]},
    "messages-empty": {"model": "m", "messages": []},
    "messages-too-many": {"model": "m", "messages": [USER] * 5},
    "messages-string": {"model": "m", "messages": "hi"},
    "message-not-object": {"model": "m", "messages": [USER, "hi"]},
    "role-unknown": {"model": "m", "messages": [{"role": "robot", "content": "x"}]},
    "role-missing": {"model": "m", "messages": [{"content": "x"}]},
    "content-number": {"model": "m", "messages": [{"role": "user", "content": 1}]},
    "stream-string": {"model": "m", "messages": [USER], "stream": "yes"},
    "stream-options-array": {"model": "m", "messages": [USER], "stream_options": []},
    "include-usage-number": {"model": "m", "messages": [USER], "stream_options": {"include_usage": 1}},
    "tools-object": {"model": "m", "messages": [USER], "tools": {}},
    "n-zero": {"model": "m", "messages": [USER], "n": 0},
    "n-float": {"model": "m", "messages": [USER], "n": 1.5},
}
for name, body in {**valid, **faults}.items():
    (out / name).write_bytes(json.dumps(body).encode())
raw = {
    "not-json": b'{"model":',
    "array": b"[]",
    "duplicate-keys": b'{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}',
    "escapes": b'{"mod\\u0065l":"\\ud83d\\ude00","messages":[{"role":"us\\u0065r","content":"\\n"}]}',
    "big-numbers": b'{"model":"m","messages":[{"role":"user"}],"n":18446744073709551615,"x":1e308,"y":-0.0}',
    "whitespace": b' \r\n\t{ "model" : "m" , "messages" : [ { "role" : "user" } ] } \n',
}
for name, body in raw.items():
    (out / name).write_bytes(body)
