// The web app in a real browser (Debian's Chromium, driven by playwright-core) against a
// running gateway:
//
//   node tests/browser/webapp.mjs <base_url> [--api-key KEY] [--prompt TEXT]
//
// It opens `/`, asks about the weather, watches tokens arrive and the weather card fill in
// before the answer ends, cuts the browser's connection mid-stream, watches the app show
// "reconnecting" and the EventSource come back with Last-Event-ID, and checks that the text
// shown at the end is exactly the recorded text (`GET /v1/streams/{id}` → `response.text`).
// Then it opens the stream from the history and replays it. Screenshots go to a fresh
// directory under $TMPDIR (or MIDSTREAM_BROWSER_OUT) whose paths are printed.
//
// How the connection is cut: the browser talks to the gateway through a TCP relay in this
// script, and the cut resets the relay's sockets (RST to the browser, close to the gateway).
// That is a real network failure to Chromium: the EventSource fires `error`, stays
// CONNECTING, and reconnects after the server's `retry:` with a Last-Event-ID header, which
// the relay sees and reports. Chromium's offline emulation (`context.setOffline(true)`)
// does not do this: it fails new requests but leaves an open event stream flowing.
//
// Prints a JSON summary of what it saw on stdout; exits 1 with a message on stderr on failure.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];
const STEP_TIMEOUT_MS = 30_000;

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'api-key': { type: 'string', default: process.env.MIDSTREAM_API_KEY ?? '' },
    prompt: { type: 'string', default: "What's the weather in Paris?" },
  },
});
const baseUrl = (positionals[0] ?? '').replace(/\/+$/, '');
if (!/^http:\/\/[^/]+$/.test(baseUrl)) {
  console.error('usage: node tests/browser/webapp.mjs http://HOST:PORT [--api-key KEY] [--prompt TEXT]');
  process.exit(2);
}

const summary = { base_url: baseUrl, prompt: options.prompt, screenshots: {} };
const outDir = process.env.MIDSTREAM_BROWSER_OUT || fs.mkdtempSync(path.join(os.tmpdir(), 'midstream-browser-'));
fs.mkdirSync(outDir, { recursive: true });

class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}

const relay = await startRelay(new URL(baseUrl));
let browser;
try {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  await run(browser, `http://127.0.0.1:${relay.port}`);
  summary.ok = true;
  console.log(JSON.stringify(summary, null, 2));
} catch (error) {
  summary.ok = false;
  summary.error = error.message;
  console.log(JSON.stringify(summary, null, 2));
  console.error(`browser test failed: ${error instanceof Failure ? error.message : error.stack}`);
  process.exitCode = 1;
} finally {
  await browser?.close();
  relay.close();
}

async function run(browser, appUrl) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const consoleErrors = [];
  const pageErrors = [];
  page.on('console', (message) => {
    // The cut itself makes Chromium log the reset connection; anything else is news.
    if (message.type() === 'error' && !/ERR_CONNECTION_(RESET|REFUSED|CLOSED)|ERR_EMPTY_RESPONSE/.test(message.text())) {
      consoleErrors.push(message.text());
    }
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  summary.console_errors = consoleErrors;
  summary.page_errors = pageErrors;

  // --- open the app, with a key if the gateway asks for one ---------------------------------
  await page.goto(`${appUrl}/`);
  await page.waitForSelector('body[data-access]');
  const access = await page.getAttribute('body', 'data-access');
  summary.key_field = access === 'key-needed' ? 'shown' : 'hidden';
  if (access === 'key-needed') {
    check(options['api-key'], 'the gateway requires an API key and none was given (--api-key or MIDSTREAM_API_KEY)');
    await page.fill('[data-testid="api-key"]', options['api-key']);
    await page.click('[data-testid="api-key-save"]');
    await page.waitForSelector('body[data-access="ok"]');
    check(await page.isHidden('[data-testid="key-panel"]'), 'the key panel stays open after a good key');
    const stored = await page.evaluate(() => sessionStorage.getItem('midstream.apiKey'));
    check(stored === options['api-key'], 'the key is not kept in sessionStorage');
  } else {
    check(access === 'ok', `the app cannot reach the gateway (data-access=${access})`);
  }
  // The 401 that told the app to ask for a key is logged by Chromium; it is no error here.
  consoleErrors.length = 0;

  // --- ask, and watch it stream -------------------------------------------------------------
  const sentAt = Date.now();
  await page.fill('[data-testid="prompt"]', options.prompt);
  await page.click('[data-testid="send"]');
  const reply = page.locator('[data-testid="assistant-message"]').last();
  const text = reply.locator('[data-testid="message-text"]');
  await page.waitForFunction(() => {
    const node = [...document.querySelectorAll('[data-testid="message-text"]')].at(-1);
    return node && node.textContent.length > 0;
  });
  summary.first_text_after_ms = Date.now() - sentAt;
  summary.stream_id = await reply.getAttribute('data-stream-id');
  check(summary.stream_id, 'the reply has no stream id: POST /v1/streams did not answer one');

  const card = await page.waitForFunction(() => {
    const reply = [...document.querySelectorAll('[data-testid="assistant-message"]')].at(-1);
    const card = reply.querySelector('[data-testid="tool-card"][data-tool="weather"]');
    if (!card || card.dataset.state === 'running') return null;
    return {
      state: card.dataset.state,
      reply_state: reply.dataset.state,
      text_chars: reply.querySelector('[data-testid="message-text"]').textContent.length,
      city: card.querySelector('[data-testid="weather-city"]')?.textContent ?? null,
      temperature: card.querySelector('[data-testid="weather-temperature"]')?.textContent ?? null,
      conditions: card.querySelector('[data-testid="weather-conditions"]')?.textContent ?? null,
      cached: Boolean(card.querySelector('[data-testid="tool-cached"]')),
      duration: card.querySelector('[data-testid="tool-duration"]')?.textContent ?? null,
      error: card.querySelector('[data-testid="tool-error"]')?.textContent ?? null,
    };
  });
  summary.weather_card = await card.jsonValue();
  check(summary.weather_card.state === 'done', `the weather card ended in ${summary.weather_card.state}: ${summary.weather_card.error}`);
  check(summary.weather_card.reply_state === 'running', 'the weather card filled in only after the answer ended');
  check(summary.weather_card.city, 'the weather card shows no city');
  check(summary.weather_card.duration, 'the weather card has no timing badge');

  // --- cut the connection mid-stream --------------------------------------------------------
  // Some way in, so that intents are marked on text that must survive the reconnect.
  await page.waitForFunction(() => {
    const reply = [...document.querySelectorAll('[data-testid="assistant-message"]')].at(-1);
    return reply.dataset.state !== 'running' || reply.querySelector('[data-testid="message-text"]').textContent.length >= 60;
  });
  check(await reply.getAttribute('data-state') === 'running', 'the answer ended before the cut could happen');
  const charsAtCut = (await text.textContent()).length;
  const eventsRequestsBefore = relay.requests.filter((r) => r.events).length;
  relay.cut();
  await page.waitForSelector('[data-testid="connection-status"][data-state="reconnecting"]');
  summary.cut = {
    how: 'TCP reset of the relay sockets between Chromium and the gateway',
    text_chars_at_cut: charsAtCut,
    status_shown: await page.textContent('[data-testid="connection-status"]'),
  };
  await page.screenshot({ path: shot('reconnecting.png') });
  await page.waitForTimeout(300);
  relay.restore();
  await page.waitForSelector('[data-testid="connection-status"]:not([data-state="reconnecting"])', { timeout: 15_000 });
  const resumed = relay.requests.filter((r) => r.events).slice(eventsRequestsBefore);
  summary.cut.reconnect_requests = resumed.map((r) => ({ last_event_id: r.lastEventId, status: r.status }));
  summary.cut.status_after = await page.getAttribute('[data-testid="connection-status"]', 'data-state');
  check(resumed.some((r) => r.lastEventId), 'the EventSource reconnected without a Last-Event-ID header');

  // --- the end: exactly the recorded text ---------------------------------------------------
  await page.waitForSelector('[data-testid="assistant-message"]:not([data-state="running"])', { timeout: 60_000 });
  const finalText = await text.textContent();
  const delivery = await reply.evaluate((node) => ({ ...node.dataset }));
  summary.final = {
    state: delivery.state,
    status_shown: await page.textContent('[data-testid="connection-status"]'),
    chars: finalText.length,
    chars_after_cut: finalText.length - charsAtCut,
    reconnects: Number(delivery.reconnects),
    snapshots: Number(delivery.snapshots),
    duplicates: Number(delivery.duplicates),
    gaps: Number(delivery.gaps),
    recovered_from_record: delivery.recovered === 'true',
    intents: await page.locator('#chat-view [data-testid="turn"]').last().locator('[data-testid="intent"]').evaluateAll((marks) => marks.map((m) => ({
      rule: m.dataset.rule,
      on: m.closest('[data-testid="user-message"]') ? 'prompt' : 'reply',
      text: m.textContent,
    }))),
    figures: await page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll('[data-testid^="figure-"]')].map((node) => [node.dataset.testid, node.textContent]),
    )),
  };
  check(delivery.state === 'completed', `the stream ended ${delivery.state}, not completed`);
  check(delivery.recovered !== 'true', 'the EventSource gave up; the app fell back to the record');
  check(Number(delivery.duplicates) === 0, `${delivery.duplicates} event(s) arrived twice after the reconnect`);
  check(finalText.length > charsAtCut, 'no text arrived after the reconnect');
  const record = await fetchRecord(summary.stream_id);
  summary.recorded = { status: record.status, chars: record.response?.text?.length ?? null, tool_calls: (record.tool_calls ?? []).map((c) => c.tool) };
  summary.text_matches_record = finalText === record.response?.text;
  if (!summary.text_matches_record) {
    summary.final.text = finalText;
    summary.recorded.text = record.response?.text;
  }
  check(summary.text_matches_record, `the text shown differs from the recorded text at character ${firstDifference(finalText, record.response?.text ?? '')}`);
  await asSeen(page, 'chat.png');

  // --- history, then the replay -------------------------------------------------------------
  await page.click('[data-testid="nav-history"]');
  const item = page.locator(`[data-testid="history-item"][data-stream-id="${summary.stream_id}"]`);
  await item.waitFor();
  summary.history = {
    items: await page.locator('[data-testid="history-item"]').count(),
    first_is_ours: (await page.locator('[data-testid="history-item"]').first().getAttribute('data-stream-id')) === summary.stream_id,
    prompt_shown: await item.locator('[data-testid="history-prompt"]').textContent(),
  };
  check(summary.history.first_is_ours, 'the newest history item is not the stream just made');
  await fullPage(page, 'history.png');

  await item.locator('a').click();
  const replayText = page.locator('#replay-view [data-testid="message-text"]');
  await page.waitForFunction((expected) => document.querySelector('#replay-view [data-testid="message-text"]')?.textContent === expected, record.response.text);
  await page.click('[data-testid="replay-play"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="replay-play"]').textContent === 'Skip');
  await page.waitForFunction(() => document.querySelector('[data-testid="replay-play"]').textContent === 'Replay', null, { timeout: 20_000 });
  summary.replay = {
    text_matches_record: (await replayText.textContent()) === record.response.text,
    cards: await page.locator('#replay-view [data-testid="tool-card"]').evaluateAll((cards) => cards.map((c) => `${c.dataset.tool}:${c.dataset.state}`)),
    intents: await page.locator('#replay-view [data-testid="intent"]').evaluateAll((marks) => marks.map((m) => m.dataset.rule)),
  };
  check(summary.replay.text_matches_record, 'the replayed text differs from the record');
  check(summary.replay.cards.includes('weather:done'), `the replay has no finished weather card: ${summary.replay.cards}`);
  await fullPage(page, 'replay.png');

  // --- a narrow screen ----------------------------------------------------------------------
  await page.setViewportSize({ width: 390, height: 844 });
  await fullPage(page, 'replay-390.png');
  await page.click('[data-testid="nav-chat"]');
  await page.waitForSelector('#chat-view:not([hidden])');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  summary.narrow = { width: 390, horizontal_overflow_px: overflow };
  check(overflow <= 0, `at 390 px the page is ${overflow} px wider than the screen`);
  await asSeen(page, 'chat-390.png');

  check(pageErrors.length === 0, `uncaught errors in the page: ${pageErrors.join('; ')}`);
  check(consoleErrors.length === 0, `errors in the console: ${consoleErrors.join('; ')}`);
  await context.close();
}

/** The record, once the recorder has written the finished stream. */
async function fetchRecord(id) {
  const headers = options['api-key'] ? { Authorization: `Bearer ${options['api-key']}` } : {};
  let last = '';
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const response = await fetch(`${baseUrl}/v1/streams/${id}`, { headers });
    if (response.ok) {
      const record = await response.json();
      if (record.status !== 'streaming' && record.status !== 'running') return record;
      last = `status ${record.status}`;
    } else {
      last = `${response.status} ${await response.text()}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Failure(`the record of ${id} never became final: ${last}`);
}

function firstDifference(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
  return `${i} (shown ${JSON.stringify(a.slice(i, i + 30))}, recorded ${JSON.stringify(b.slice(i, i + 30))})`;
}

/** A screenshot of the chat as its reader sees it: scrolled to the end, the composer below. */
async function asSeen(page, name) {
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await page.screenshot({ path: shot(name) });
}

/** A screenshot of the whole page (history, replay), taken from the top. */
async function fullPage(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: shot(name), fullPage: true });
}

/** The path of a screenshot, listed in the summary. */
function shot(name) {
  const file = path.join(outDir, name);
  summary.screenshots[name.replace(/\.png$/, '')] = file;
  return file;
}

/**
 * A TCP relay from a loopback port to the gateway, which can cut every connection at once
 * and refuse new ones until restored. It also reads the HTTP/1.1 request heads going by,
 * to report which event requests carried a Last-Event-ID, and the status each got.
 */
async function startRelay(target) {
  const pairs = new Set();
  const requests = [];
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(Number(target.port || 80), target.hostname);
    const pair = { client, upstream, waiting: [] };
    pairs.add(pair);
    client.on('data', (chunk) => {
      for (const head of chunk.toString('latin1').matchAll(/^(GET|POST|PUT|DELETE) (\S+) HTTP\/1\.1\r\n([\s\S]*?)\r\n\r\n/gm)) {
        const lastEventId = /^last-event-id: *(.*)$/im.exec(head[3])?.[1]?.trim() ?? null;
        const request = { method: head[1], path: head[2], events: /\/events(\?|$)/.test(head[2]), lastEventId, status: null };
        requests.push(request);
        pair.waiting.push(request);
      }
    });
    upstream.on('data', (chunk) => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1', 0, 16));
      if (status && pair.waiting.length) pair.waiting.shift().status = Number(status[1]);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    requests,
    cut() {
      down = true;
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    restore() {
      down = false;
    },
    close() {
      server.close();
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
    },
  };
}
