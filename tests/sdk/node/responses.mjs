// The Responses API (and legacy completions) through the official openai Node SDK, and the
// AI SDK's default OpenAI provider (which speaks Responses since AI SDK 5). Cases for drive.mjs; the Rust test is
// crates/midstream-gateway/tests/sdk.rs.

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, jsonSchema, streamText, tool } from 'ai';

const PROMPT = "What's the weather in Paris? Also schedule a meeting with John next Wednesday at 10 AM.";

async function naive(client, options = {}) {
  let text = '';
  let finalText = null;
  const events = [];
  const types = [];
  const stream = await client.responses.create({ model: 'gpt-4o-mini', input: PROMPT, stream: true }, options);
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.output_text.delta') text += event.delta;
    else if (event.type === 'keepalive' && event.midstream) events.push(event.midstream);
    // A raw event's response has no `output_text` helper in Node: read its message items.
    else if (event.type === 'response.completed') finalText = outputText(event.response);
  }
  return { text, final_text: finalText, events, types };
}

function outputText(response) {
  return response.output
    .filter((item) => item.type === 'message')
    .flatMap((item) => item.content)
    .filter((part) => part.type === 'output_text')
    .map((part) => part.text)
    .join('');
}

async function helper(client) {
  let text = '';
  const events = [];
  const stream = client.responses.stream({ model: 'gpt-4o-mini', input: PROMPT });
  for await (const event of stream) {
    if (event.type === 'response.output_text.delta') text += event.delta;
    else if (event.type === 'keepalive' && event.midstream) events.push(event.midstream);
  }
  const final = await stream.finalResponse();
  return { text, final_text: final.output_text, status: final.status, events };
}

async function create(client) {
  const response = await client.responses.create({ model: 'gpt-4o-mini', input: PROMPT });
  return { text: response.output_text, status: response.status, events: response.midstream?.events ?? [] };
}

async function completionsNaive(client) {
  let text = '';
  const events = [];
  const stream = await client.completions.create({ model: 'gpt-4o-mini', prompt: PROMPT, stream: true });
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    if (chunk.midstream) events.push(chunk.midstream);
  }
  return { text, events };
}

async function completionsCreate(client) {
  const completion = await client.completions.create({ model: 'gpt-4o-mini', prompt: PROMPT });
  return { text: completion.choices[0].text, events: completion.midstream?.events ?? [] };
}

export const openaiResponsesCases = {
  completions_naive: completionsNaive,
  completions_create: completionsCreate,
  responses_naive: naive,
  responses_helper: helper,
  responses_create: create,
  responses_events_off: (client) => naive(client, { headers: { 'X-Midstream-Events': 'off' } }),
};

// --- The AI SDK's default provider: `openai(model)` is the Responses API. ---

function provider(baseURL) {
  return createOpenAI({ baseURL, apiKey: 'sk-test-not-used' })('gpt-4o-mini');
}

// A tool the page defines (not the gateway's): the model's call comes back to the SDK.
const weatherTool = tool({
  description: 'The weather in a city',
  inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
});

async function aiStreamText(baseURL) {
  const errors = [];
  const result = streamText({ model: provider(baseURL), prompt: PROMPT, onError: ({ error }) => errors.push(String(error)) });
  let text = '';
  const parts = [];
  for await (const part of result.fullStream) {
    parts.push(part.type);
    if (part.type === 'text-delta') text += part.text;
    if (part.type === 'error') errors.push(String(part.error));
  }
  return { text, finish_reason: await result.finishReason, usage: await result.usage, parts, errors };
}

async function aiGenerateText(baseURL) {
  const result = await generateText({ model: provider(baseURL), prompt: PROMPT });
  return { text: result.text, finish_reason: result.finishReason, usage: result.usage };
}

async function aiToolCalls(baseURL) {
  const result = await generateText({ model: provider(baseURL), prompt: 'Weather in Paris?', tools: { weather: weatherTool } });
  const streamed = streamText({ model: provider(baseURL), prompt: 'Weather in Paris?', tools: { weather: weatherTool } });
  const streamedCalls = [];
  for await (const part of streamed.fullStream) {
    if (part.type === 'tool-call') streamedCalls.push({ name: part.toolName, input: part.input });
  }
  return {
    finish_reason: result.finishReason,
    calls: result.toolCalls.map((c) => ({ name: c.toolName, input: c.input })),
    streamed_calls: streamedCalls,
  };
}

export const aiResponsesCases = {
  'ai-stream-text': aiStreamText,
  'ai-generate-text': aiGenerateText,
  'ai-tool-calls': aiToolCalls,
};
