// Drives the official openai Node SDK, and the Vercel AI SDK's `ai` package, against a
// MidStream gateway and prints what it saw.
//
// Usage: node drive.mjs CASE BASE_URL
// BASE_URL ends in /v1. CASE is one of: naive, helper, create, error, and the Responses cases
// of responses.mjs (openai; the Rust test is crates/midstream-gateway/tests/sdk.rs); ui-chat,
// ui-resume (ai; the Rust test is crates/midstream-gateway/tests/ai_sdk.rs); ai-stream-text,
// ai-generate-text, ai-tool-calls (the AI SDK's Responses provider; tests/sdk.rs). Prints one JSON object on stdout; the Rust test
// makes the assertions. A UI message chunk the SDK's own schema rejects makes the case exit 1
// after printing.

import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

import {
  AbstractChat,
  DefaultChatTransport,
  parseJsonEventStream,
  readUIMessageStream,
  uiMessageChunkSchema,
} from 'ai';
import OpenAI from 'openai';
import { VERSION } from 'openai/version';

import { aiResponsesCases, openaiResponsesCases } from './responses.mjs';

// `ai` exports no version constant: its package.json is one of its exports.
const AI_VERSION = createRequire(import.meta.url)('ai/package.json').version;

const MESSAGES = [
  { role: 'user', content: "What's the weather in Paris? Also schedule a meeting with John next Wednesday at 10 AM." },
];

async function naive(client) {
  let text = '';
  const events = [];
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES, stream: true });
  for await (const chunk of stream) {
    // The loop every tutorial shows: must keep working with injected events.
    text += chunk.choices[0]?.delta?.content || '';
    if (chunk.midstream) events.push(chunk.midstream);
  }
  return { text, events };
}

async function helper(client) {
  let text = '';
  const events = [];
  const stream = client.chat.completions.stream({ model: 'gpt-4o-mini', messages: MESSAGES });
  stream.on('content', (delta) => {
    text += delta;
  });
  stream.on('chunk', (chunk) => {
    if (chunk.midstream) events.push(chunk.midstream);
  });
  const final = await stream.finalChatCompletion();
  return { text, final_text: final.choices[0].message.content, events };
}

async function create(client) {
  const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES });
  return { text: completion.choices[0].message.content, events: completion.midstream?.events ?? [] };
}

async function error(client) {
  let text = '';
  try {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES, stream: true });
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content || '';
    }
  } catch (e) {
    return { text, error: e.constructor.name, message: String(e.message) };
  }
  return { text, error: null };
}

// --- The Vercel AI SDK UI message stream (POST /v1/ui/chat, GET /v1/ui/chat/{id}/stream) ---

// Innocent on purpose: the weather tool must fire on the model's text, not on the prompt.
const UI_PROMPT = 'Tell me something about Paris.';
// Sent as useChat's extra body (`body: { model }`): the test gateway routes no alias.
const UI_MODEL = 'gpt-4o-mini';

function userMessage(text) {
  return { id: `user-${randomUUID()}`, role: 'user', parts: [{ type: 'text', text }] };
}

/** What DefaultChatTransport sends for `sendMessage({ text })` with `body: { model }`. */
function chatBody(chatId, message) {
  return { model: UI_MODEL, id: chatId, messages: [message], trigger: 'submit-message' };
}

function headersOf(response) {
  return {
    status: response.status,
    content_type: response.headers.get('content-type'),
    ui_message_stream: response.headers.get('x-vercel-ai-ui-message-stream'),
  };
}

/**
 * The body as UI message chunks, parsed as DefaultChatTransport parses it (its own
 * `processResponseStream`: parseJsonEventStream with uiMessageChunkSchema). A chunk the schema
 * rejects is kept in `report.invalid` with the zod error, and left out of the stream.
 */
function chunksOf(body, report) {
  return parseJsonEventStream({ stream: body, schema: uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (result.success) {
          report.chunk_types.push(result.value.type);
          controller.enqueue(result.value);
        } else {
          report.invalid.push({ chunk: result.rawValue, error: String(result.error?.message ?? result.error) });
        }
      },
    }),
  );
}

/** The final UIMessage readUIMessageStream builds from `chunks`; its errors go to `report.errors`. */
async function readMessage(chunks, report) {
  let message = null;
  const onError = (e) => report.errors.push({ name: e?.name ?? 'Error', message: String(e?.message ?? e) });
  for await (const snapshot of readUIMessageStream({ stream: chunks, onError })) {
    message = snapshot;
  }
  return message;
}

function textOf(message) {
  return (message?.parts ?? [])
    .filter((p) => p.type === 'text')
    .map((p) => p.text)
    .join('');
}

function newReport() {
  return { chunk_types: [], invalid: [], errors: [] };
}

/** A chat without a UI framework: AbstractChat over a plain in-memory state, as @ai-sdk/react's Chat is over React state. */
class MemoryChatState {
  status = 'ready';
  error = undefined;
  constructor(messages) {
    this.messages = messages;
  }
  pushMessage = (message) => {
    this.messages = this.messages.concat(message);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
  snapshot = (thing) => structuredClone(thing);
}

class NodeChat extends AbstractChat {
  constructor({ messages = [], ...init }) {
    super({ ...init, state: new MemoryChatState(messages) });
  }
}

function newChat(baseURL, id, messages, errors) {
  const transport = new DefaultChatTransport({ api: `${baseURL}/ui/chat`, body: { model: UI_MODEL } });
  return new NodeChat({
    id,
    messages,
    transport,
    onError: (e) => errors.push({ name: e?.name ?? 'Error', message: String(e?.message ?? e) }),
  });
}

function chatSummary(chat, errors) {
  const message = chat.messages.findLast((m) => m.role === 'assistant') ?? null;
  return {
    status: chat.status,
    error: chat.error ? String(chat.error.message ?? chat.error) : null,
    errors,
    roles: chat.messages.map((m) => m.role),
    message,
    text: textOf(message),
  };
}

/** POST /v1/ui/chat read with readUIMessageStream, then the same through the SDK's own Chat. */
async function uiChat(baseURL) {
  const report = newReport();
  const response = await fetch(`${baseURL}/ui/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(chatBody(`chat-${randomUUID()}`, userMessage(UI_PROMPT))),
  });
  report.response = headersOf(response);
  if (!response.ok) {
    report.body = await response.text();
    return report;
  }
  report.message = await readMessage(chunksOf(response.body, report), report);
  report.text = textOf(report.message);

  const errors = [];
  const chat = newChat(baseURL, `chat-${randomUUID()}`, [], errors);
  await chat.sendMessage({ text: UI_PROMPT });
  report.chat = chatSummary(chat, errors);
  return report;
}

/**
 * POST /v1/ui/chat, a few chunks, then the fetch aborted (a closed tab). The resume GET, read
 * with readUIMessageStream and by Chat.resumeStream at the same time, must give the whole
 * message; once it ended, the GET answers 204.
 */
async function uiResume(baseURL) {
  const report = newReport();
  const chatId = `chat-${randomUUID()}`;
  report.chat_id = chatId;
  const user = userMessage(UI_PROMPT);
  const abort = new AbortController();
  const response = await fetch(`${baseURL}/ui/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(chatBody(chatId, user)),
    signal: abort.signal,
  });
  report.response = headersOf(response);
  if (!response.ok) {
    report.body = await response.text();
    return report;
  }
  const reader = chunksOf(response.body, report).getReader();
  const before = [];
  while (before.filter((c) => c.type === 'text-delta').length < 2) {
    const { value, done } = await reader.read();
    if (done) break;
    before.push(value);
  }
  abort.abort();
  await reader.cancel().catch(() => {});
  report.before = {
    chunk_types: before.map((c) => c.type),
    text: before.filter((c) => c.type === 'text-delta').map((c) => c.delta).join(''),
  };

  const resumeUrl = `${baseURL}/ui/chat/${encodeURIComponent(chatId)}/stream`;
  const resumed = newReport();
  const chatErrors = [];
  const chat = newChat(baseURL, chatId, [user], chatErrors);
  const raw = (async () => {
    const again = await fetch(resumeUrl);
    resumed.response = headersOf(again);
    if (again.status !== 200) return null;
    return readMessage(chunksOf(again.body, resumed), resumed);
  })();
  const [message] = await Promise.all([raw, chat.resumeStream()]);
  resumed.message = message;
  resumed.text = textOf(message);
  report.resumed = resumed;
  report.chat = chatSummary(chat, chatErrors);

  // Right after [DONE], then until it answers 204 (bounded): the gateway decides "ended" from
  // the stream's record, which its recorder writes a little later.
  const startedAt = Date.now();
  const first = await fetch(resumeUrl);
  report.after = { status: first.status, chunks: (await first.text()).split('\n\n').filter(Boolean).length };
  let settled = first.status;
  for (let i = 0; i < 60 && settled !== 204; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const again = await fetch(resumeUrl);
    await again.arrayBuffer();
    settled = again.status;
  }
  report.after.settled_status = settled;
  report.after.settled_after_ms = Date.now() - startedAt;
  return report;
}

function invalidChunks(result) {
  return [result, result.resumed].flatMap((r) => r?.invalid ?? []);
}

const [caseName, baseURL] = process.argv.slice(2);
const openaiCases = { naive, helper, create, error, ...openaiResponsesCases };
const uiCases = { 'ui-chat': uiChat, 'ui-resume': uiResume, ...aiResponsesCases };
let result;
if (openaiCases[caseName]) {
  const client = new OpenAI({ baseURL, apiKey: 'sk-test-not-used', maxRetries: 0, timeout: 30_000 });
  result = await openaiCases[caseName](client);
  result.sdk_version = VERSION;
} else if (uiCases[caseName]) {
  result = await uiCases[caseName](baseURL);
  result.sdk_version = AI_VERSION;
} else {
  console.error(`unknown case ${caseName}: one of ${[...Object.keys(openaiCases), ...Object.keys(uiCases)].join(', ')}`);
  process.exit(2);
}
console.log(JSON.stringify(result));
if (invalidChunks(result).length > 0) {
  console.error(`the SDK rejected chunks: ${JSON.stringify(invalidChunks(result), null, 2)}`);
  process.exitCode = 1;
}
