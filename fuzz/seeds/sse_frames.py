#!/usr/bin/env python3
"""Writes the seed corpus of the `sse_frames` fuzz target, fuzz/corpus/sse_frames/.

From the recorded OpenAI streams (crates/midstream-testkit/fixtures/openai-streams/*.sse): each
stream's first 3 KB, as sent. Then hand-written edge cases: every line ending and their
mixes, a `\\r` that may or may not belong to a `\\r\\n`, comments, `event:`/`id:`/`retry:`,
chunks in several `data:` lines (issue 20), `data` without a colon, a BOM, empty frames, and an
unfinished last frame. Every seed stays under 4 KB, so libFuzzer's default `-max_len` stays 4096.

Run from anywhere: `python3 fuzz/seeds/sse_frames.py`. It replaces the directory's contents.
"""
import pathlib

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "fuzz/corpus/sse_frames"
out.mkdir(parents=True, exist_ok=True)
for old in out.iterdir():
    old.unlink()

for fixture in sorted((root / "crates/midstream-testkit/fixtures/openai-streams").glob("*.sse")):
    (out / f"stream-{fixture.stem}").write_bytes(fixture.read_bytes()[:3000])

CHUNK = b'{"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}'
edges = {
    "crlf": b"data: " + CHUNK + b"\r\n\r\ndata: [DONE]\r\n\r\n",
    "cr": b"data: " + CHUNK + b"\r\rdata: [DONE]\r\r",
    "mixed-endings": b"data: a\r\n\ndata: b\n\r\ndata: c\r\r\ndata: d\n\r: x\r\n\r\n",
    "cr-at-the-end": b"data: a\r\r",
    "cr-then-lf": b"data: a\r\r\ndata: b\n\n",
    "comments-and-fields": b": ping\n\nevent: message\nid: 7\nretry: 1500\ndata: " + CHUNK + b"\n\n: \n\n",
    "multi-data": b'data: {"id":"c","choices":[{"index":0,\ndata: "delta":{"content":"sk-proj-ABCDEFGHIJKLMNOPQRSTUV"}}]}\n\n',
    "multi-data-crlf": b'event: x\r\ndata: {"a":\r\ndata\r\ndata:1}\r\nid: 2\r\n\r\n',
    "multi-data-empty": b"data:\ndata:\ndata\n\n",
    "data-without-space": b"data:" + CHUNK + b"\n\ndata:  two spaces\n\n",
    "not-data": b"database: no\ndata2: no\n datum: no\n\n",
    "bom": b"\xef\xbb\xbfdata: x\n\n",
    "empty-frames": b"\n\n\r\n\r\r\n",
    "unfinished": b"data: " + CHUNK + b"\n\ndata: {\"cut",
    "invalid-utf8": b"data: \xff\xfe\xc3\n\n",
    "done": b"data: [DONE]\n\n",
}
for name, data in edges.items():
    (out / f"edge-{name}").write_bytes(data)
