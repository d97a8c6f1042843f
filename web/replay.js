// A recorded stream (`GET /v1/streams/{id}`), shown as the chat showed it: the prompt, the
// reply with its intents marked, the tool cards. "Replay" plays it again on the recorded
// timeline (the text paced between time to first token and the end, events at their `at_ms`),
// squeezed into at most eight seconds.

import { finishCard } from './cards.js';
import { element } from './dom.js';
import { formatDate, formatMs } from './format.js';
import { Turn } from './message.js';

const LONGEST_REPLAY_MS = 8000;
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'interrupted']);

export class ReplayView {
  constructor(api, root) {
    this.api = api;
    this.conversation = root.querySelector('#replay-conversation');
    this.meta = root.querySelector('#replay-meta');
    this.notice = root.querySelector('#replay-notice');
    this.play = root.querySelector('#replay-play');
    this.record = null;
    this.animation = null;
    this.play.addEventListener('click', () => {
      if (this.animation) this.stopAnimation(true);
      else if (this.record) this.animate();
    });
  }

  /** Loads and shows the record of stream `id`. */
  async open(id) {
    this.stopAnimation(false);
    this.record = null;
    this.play.disabled = true;
    this.conversation.replaceChildren();
    this.meta.replaceChildren();
    this.say('Loading…');
    try {
      this.record = await this.api.getStream(id);
    } catch (error) {
      this.say(error.status === 404 ? `No recorded stream ${id}.` : `Could not load the stream: ${error.message}`, true);
      return;
    }
    this.say(TERMINAL.has(this.record.status) ? '' : 'This stream is still running: the record shows it so far.');
    this.drawMeta(this.record);
    this.showStatic();
    this.play.disabled = false;
  }

  /** Leaving the view stops a replay in progress. */
  leave() {
    this.stopAnimation(false);
  }

  showStatic() {
    const record = this.record;
    const turn = this.newTurn();
    turn.restore(record.response?.text ?? '', recordedEvents(record));
    finishCalls(turn, record);
    turn.finish(record.status ?? 'completed', record.finish_reason);
    if (record.error) turn.showError(record.error.message ?? String(record.error));
  }

  animate() {
    const record = this.record;
    const turn = this.newTurn();
    const text = Array.from(record.response?.text ?? '');
    const events = recordedEvents(record).filter((entry) => Number.isFinite(entry.at_ms ?? entry.event?.at_ms));
    events.sort((a, b) => (a.at_ms ?? a.event.at_ms) - (b.at_ms ?? b.event.at_ms));
    const lastEvent = events.length ? (events.at(-1).at_ms ?? events.at(-1).event.at_ms) : 0;
    const ttft = Number.isFinite(record.ttft_ms) ? record.ttft_ms : 0;
    const end = Math.max(Number.isFinite(record.duration_ms) ? record.duration_ms : 0, lastEvent, ttft + 1);
    const speed = Math.max(1, end / LONGEST_REPLAY_MS);
    const started = performance.now();
    let shown = 0;
    let next = 0;
    this.play.textContent = 'Skip';
    const frame = () => {
      const t = (performance.now() - started) * speed;
      const due = t < ttft ? 0 : Math.min(text.length, Math.ceil(text.length * ((t - ttft) / Math.max(1, end - ttft))));
      if (due > shown) {
        turn.apply('token', { text: text.slice(shown, due).join('') });
        shown = due;
      }
      while (next < events.length && (events[next].at_ms ?? events[next].event.at_ms) <= t) {
        const entry = events[next++];
        turn.apply(entry.event.type ?? entry.type, entry.event);
      }
      if (shown >= text.length && next >= events.length && t >= end) {
        // Played to the end: the turn already shows everything; it only needs its ending.
        this.stopAnimation(false);
        finishCalls(turn, record);
        turn.finish(record.status ?? 'completed', record.finish_reason);
        return;
      }
      this.animation = requestAnimationFrame(frame);
    };
    this.animation = requestAnimationFrame(frame);
  }

  /** Ends a replay; `complete` draws the whole record at once, as when it is skipped. */
  stopAnimation(complete) {
    if (!this.animation) return;
    cancelAnimationFrame(this.animation);
    this.animation = null;
    this.play.textContent = 'Replay';
    if (complete) this.showStatic();
  }

  newTurn() {
    const turn = new Turn(lastUserMessage(this.record.request) ?? '');
    this.conversation.replaceChildren(turn.element);
    return turn;
  }

  drawMeta(record) {
    const usage = record.usage ?? {};
    const rows = [
      ['Stream', record.id],
      ['Status', record.status + (record.finish_reason ? ` (${record.finish_reason})` : '')],
      ['Model', record.model],
      ['Started', formatDate(record.created_at)],
      ['Time to first token', formatMs(record.ttft_ms)],
      ['Duration', formatMs(record.duration_ms)],
      ['Tokens', Number.isFinite(usage.total_tokens) ? `${usage.prompt_tokens ?? '?'} in · ${usage.completion_tokens ?? '?'} out` : '–'],
    ];
    for (const [term, value] of rows) {
      const row = element('div');
      const dd = element('dd', '', value ?? '–');
      dd.dataset.testid = `replay-${term.toLowerCase().replaceAll(' ', '-')}`;
      row.append(element('dt', '', term), dd);
      this.meta.append(row);
    }
  }

  say(message, isError = false) {
    this.notice.hidden = !message;
    this.notice.textContent = message;
    this.notice.classList.toggle('error', isError);
  }
}

/**
 * The record's events as `{type, at_ms, event}`; when it kept intents only in `intents`,
 * those are added so the marks are drawn all the same.
 */
function recordedEvents(record) {
  const events = (record.events ?? []).map((entry) => ({
    type: entry.type ?? entry.event?.type,
    at_ms: entry.at_ms ?? entry.event?.at_ms,
    event: { type: entry.type, ...entry.event },
  }));
  if (!events.some((entry) => entry.type === 'intent')) {
    for (const intent of record.intents ?? []) {
      events.push({ type: 'intent', at_ms: intent.at_ms, event: { type: 'intent', ...intent } });
    }
  }
  return events;
}

/** The record's `tool_calls` are the final word on each call: cards for any the events missed. */
function finishCalls(turn, record) {
  for (const call of record.tool_calls ?? []) {
    if (call.result == null && !call.error) continue;
    const card = turn.card(call);
    if (card.dataset.state === 'running') finishCard(card, call);
  }
}

function lastUserMessage(request) {
  const user = [...(request?.messages ?? [])].reverse().find((message) => message.role === 'user');
  if (!user) return null;
  if (typeof user.content === 'string') return user.content;
  if (Array.isArray(user.content)) {
    return user.content.filter((part) => part.type === 'text').map((part) => part.text).join('\n');
  }
  return null;
}
