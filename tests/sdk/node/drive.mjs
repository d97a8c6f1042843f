// Drives the official openai Node SDK against a MidStream gateway and prints what it saw.
//
// Usage: node drive.mjs CASE BASE_URL
// CASE is one of: naive, helper, create, error. Prints one JSON object on stdout; the Rust
// test (crates/midstream-gateway/tests/sdk.rs) makes the assertions.

import OpenAI from 'openai';
import { VERSION } from 'openai/version';

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

const [caseName, baseURL] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'sk-test-not-used', maxRetries: 0, timeout: 30_000 });
const cases = { naive, helper, create, error };
const result = await cases[caseName](client);
result.sdk_version = VERSION;
console.log(JSON.stringify(result));
