#!/usr/bin/env python3
"""Writes the seed corpus of the `chunk_reader` fuzz target, fuzz/corpus/chunk_reader/.

From the recorded OpenAI streams (crates/midstream-testkit/fixtures/openai-streams/*.sse, their
`data: ` payloads): each stream's first chunks up to about 3 KB and its last three, as one input
(payloads separated by 0x1E, as the target splits them), and a few single chunks of each. Then
hand-written edge cases: escapes, choice 0 among other choices, usage chunks, OpenAI's
`obfuscation` field (alone and as a stream), invalid UTF-8, and what the fast reader leaves to
serde. Every seed stays under 4 KB, so libFuzzer's default `-max_len` stays 4096.

Run from anywhere: `python3 fuzz/seeds/chunk_reader.py`. It replaces the directory's contents.
"""
import json
import pathlib
import re

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "fuzz/corpus/chunk_reader"
out.mkdir(parents=True, exist_ok=True)
for old in out.iterdir():
    old.unlink()
# Separates the payloads of one stream in an input (see fuzz_targets/chunk_reader.rs).
RS = b"\x1e"
fixtures = sorted((root / "crates/midstream-testkit/fixtures/openai-streams").glob("*.sse"))



def write(name, data):
    (out / name).write_bytes(data)


for f in fixtures:
    stem = f.stem
    payloads = [l[len("data: "):].encode() for l in f.read_text().splitlines() if l.startswith("data: ")]
    # A stream: its first chunks up to ~3 KB, then its last three (finish, usage, [DONE]).
    tail = payloads[-3:]
    head, size = [], sum(map(len, tail))
    for p in payloads[:-3]:
        if size + len(p) > 3000:
            break
        head.append(p)
        size += len(p)
    write(f"stream-{stem}", RS.join(head + tail))
    # Single chunks: the first two, the last two before [DONE], and any with escapes in content.
    picks = {0, 1, len(payloads) - 3, len(payloads) - 2}
    escaped = [i for i, p in enumerate(payloads) if re.search(rb'"content":"[^"]*\\', p)]
    picks.update(escaped[:3])
    for i in sorted(picks):
        write(f"chunk-{stem}-{i:03}", payloads[i])

# A content chunk as OpenAI sends them, with `after` inserted after `choices`.
CONTENT_CHUNK = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346178,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]%s}'


def content(text, after=""):
    return (CONTENT_CHUNK % (json.dumps(text), after)).encode()


edges = {
    # Escapes in every kind of string the view reads or skips.
    "edge-escapes": rb'{"id":"c\"1","object":"x\/y","choices":[{"index":0,"delta":{"content":"a\\b\n\t\u00e9\ud83d\ude00\/\"","role":"\u0061"},"finish_reason":null}]}',
    "edge-escaped-finish-reason": rb'{"choices":[{"index":0,"delta":{},"finish_reason":"st\u006fp"}]}',
    "edge-escaped-key": rb'{"\u0063hoices":[{"index":0,"delta":{"content":"a"}}],"id":"x"}',
    "edge-lone-surrogate": rb'{"object":"\ud800","choices":[{"index":0,"delta":{"content":"\udc00"}}]}',
    # Choice 0 among others, nested values in and after it.
    "edge-nested-choices": rb'{"choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a","tool_calls":[{"index":0,"function":{"arguments":"{\"a\":[1,{\"b\":null}]}"}}]},"finish_reason":"stop"},{"index":0,"x":[[[{}]]]},{"index":-1}]}',
    "edge-choices-null": rb'{"id":"a","choices":null,"usage":null,"error":null}',
    "edge-delta-null": rb'{"choices":[{"index":0,"delta":null,"message":null,"finish_reason":null}]}',
    "edge-non-streaming": rb'{"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}',
    # Usage chunks: details, negatives, bounds, floats.
    "edge-usage": rb'{"id":"a","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":30,"total_tokens":44,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}',
    "edge-usage-bounds": rb'{"choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":9223372036854775807,"total_tokens":null}}',
    "edge-usage-overflow": rb'{"choices":[],"usage":{"total_tokens":9223372036854775808}}',
    "edge-usage-float": rb'{"choices":[],"usage":{"total_tokens":1e3,"prompt_tokens":-0}}',
    "edge-index-bounds": rb'{"choices":[{"index":4294967295,"delta":{}},{"index":4294967296},{"index":0.0}]}',
    # OpenAI's obfuscation padding after choices, a stream of them (the memo's trailer).
    "edge-obfuscation": content("Hi", ',"usage":null,"obfuscation":"xYz12"'),
    "stream-obfuscation": RS.join([
        content("Hel", ',"usage":null,"obfuscation":"a"'),
        content("lo", ',"usage":null,"obfuscation":"bcd"'),
        content("\" \\", ',"usage":null,"obfuscation":"\\u0041"'),
        content("!", ',"usage":null,"obfuscation":7'),
        content("?", ',"usage":null,"obfuscation":"q","id":"again"'),
        content("end", ',"obfuscation":"z"'),
    ]),
    # A stream whose chunks end right after choices, then start otherwise.
    "stream-shapes": RS.join([
        content("a"), content("bc"), content("b\\u00e9"),
        content("c") + b" \n",
        b'{"choices":[{"index":0,"delta":{"content":"x"}}],"id":"a","created":1}',
        b'{"choices":[{"index":0,"delta":{"content":"yy"}}],"id":"a","created":2}',
        b'{"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"total_tokens":1}}',
        b'{"id":"a","model":"m","model":"n","choices":[]}',
        b'{"id":"a","model":"m","created":3,"choices":[{"index":0,"delta":{"content":[1]}}]}',
    ]),
    "edge-error": rb'{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}',
    "edge-whitespace": b' {\n "id" : "a" ,\r\n "choices" : [ { "index" : 0 , "delta" : { "content" : "x" } } ] ,\t"usage" : null } \t\n',
    "edge-top-level-array": rb'[null,null,null,[{"index":0,"delta":{"content":"a"}}],null,null]',
    "edge-deep": b'{"x":' + b"[" * 70 + b"]" * 70 + b',"choices":[]}',
    "edge-duplicates": rb'{"id":"a","choices":[{"index":0,"index":0}],"id":"b"}',
    "edge-numbers": rb'{"created":-0.0e+1,"x":[0,-12,3.5,2E-2,1e308,1e400],"choices":[]}',
    "edge-invalid-utf8-skipped": b'{"object":"\xff","choices":[{"index":0,"delta":{"content":"ok","role":"\xc3\x28"}}]}',
    "edge-invalid-utf8-content": b'{"choices":[{"index":0,"delta":{"content":"\xe2\x82"}}]}',
    "edge-control-char": b'{"id":"a\tb","choices":[]}',
    "edge-trailing": rb'{"choices":[]} x',
    "edge-done": b"[DONE]",
    "edge-empty-object": b"{}",
}
for name, data in edges.items():
    write(name, data)
files = sorted(out.iterdir())
print(len(files), "files,", sum(f.stat().st_size for f in files), "bytes, largest", max(f.stat().st_size for f in files))
