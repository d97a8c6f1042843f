// One turn of a conversation: the user's prompt and the reply as it streams, with intents
// marked on the text and a card per tool call. Live streams, snapshots and replays of a
// record all draw through `apply`, so they look the same.

import { abandonCard, createCard, finishCard } from './cards.js';
import { element } from './dom.js';
import { MarkedText } from './marks.js';

export class Turn {
  constructor(prompt) {
    this.prompt = prompt;
    this.cards = new Map();
    this.status = 'running';

    this.element = element('li', 'turn');
    this.element.dataset.testid = 'turn';

    const user = element('div', 'bubble user');
    user.dataset.testid = 'user-message';
    const promptText = element('p', 'prompt-text');
    promptText.dataset.testid = 'prompt-text';
    user.append(promptText);

    this.reply = element('div', 'bubble assistant');
    this.reply.dataset.testid = 'assistant-message';
    this.reply.dataset.state = 'running';
    this.reasoning = element('details', 'reasoning');
    this.reasoning.hidden = true;
    this.reasoning.open = true;
    const summary = element('summary', '', 'Reasoning');
    this.reasoningText = element('p', 'reasoning-text');
    this.reasoningText.dataset.testid = 'reasoning-text';
    this.reasoning.append(summary, this.reasoningText);
    const text = element('p', 'text streaming');
    text.dataset.testid = 'message-text';
    this.error = element('p', 'message-error');
    this.error.dataset.testid = 'message-error';
    this.error.hidden = true;
    this.cardList = element('div', 'cards');
    this.cardList.dataset.testid = 'tool-cards';
    this.foot = element('footer', 'message-foot');
    this.reply.append(this.reasoning, text, this.error, this.cardList, this.foot);

    this.element.append(user, this.reply);
    this.promptText = new MarkedText(promptText);
    this.promptText.reset(prompt);
    this.replyText = new MarkedText(text);
  }

  /** The reply's text so far. */
  get text() {
    return this.replyText.text;
  }

  /** Links the turn to its recorded stream. */
  setStreamId(id) {
    this.streamId = id;
    this.reply.dataset.streamId = id;
    this.renderFoot();
  }

  /** Applies one event of the stream (named as on the EventSource) to what is shown. */
  apply(type, data) {
    switch (type) {
      case 'token':
        this.replyText.append(data.text ?? '');
        break;
      case 'reasoning':
        this.reasoning.hidden = false;
        this.reasoningText.append(data.text ?? '');
        break;
      case 'intent':
        (data.scope === 'prompt' ? this.promptText : this.replyText).mark(data);
        break;
      case 'tool.started':
        this.card(data);
        break;
      case 'tool.result':
      case 'tool.error':
        finishCard(this.card(data), data);
        break;
      case 'error':
        this.showError(data.error?.message ?? 'The stream failed.');
        break;
      case 'snapshot':
        this.restore(data.text ?? '', data.events ?? [], data.reasoning);
        break;
      case 'done':
        this.finish(data.status ?? 'completed', data.finish_reason);
        break;
      default:
        // `usage` and anything newer: the figures read them, the text does not change.
        break;
    }
  }

  /**
   * Replaces the reply's text, marks and cards with a snapshot: the text (and reasoning) so
   * far and the events so far, in order. The prompt's marks stay (an intent is marked once).
   */
  restore(text, events, reasoning = null) {
    this.replyText.reset(text);
    if (typeof reasoning === 'string') {
      this.reasoningText.textContent = reasoning;
      this.reasoning.hidden = !reasoning;
    }
    this.cards.clear();
    this.cardList.replaceChildren();
    for (const entry of events) {
      const event = entry.event ?? entry;
      this.apply(event.type ?? entry.type, event);
    }
  }

  /** The stream ended with `status` (completed, failed, cancelled, interrupted). */
  finish(status, finishReason = null) {
    this.status = status;
    this.finishReason = finishReason;
    this.reply.dataset.state = status;
    this.reply.querySelector('.text').classList.remove('streaming');
    this.replyText.settle();
    this.promptText.settle();
    for (const card of this.cards.values()) abandonCard(card);
    this.renderFoot();
  }

  /**
   * How the events arrived: reconnects, snapshots, duplicates and gaps by `seq`, and whether
   * the end came from the record instead of the stream. Kept as data attributes for tests.
   */
  noteDelivery({ reconnects = 0, snapshots = 0, duplicates = 0, gaps = 0, recovered = false }) {
    Object.assign(this.reply.dataset, {
      reconnects: String(reconnects),
      snapshots: String(snapshots),
      duplicates: String(duplicates),
      gaps: String(gaps),
      recovered: String(recovered),
    });
  }

  showError(message) {
    this.error.hidden = false;
    this.error.textContent = message;
  }

  card(call) {
    let card = this.cards.get(call.id);
    if (!card) {
      card = createCard(call);
      this.cards.set(call.id, card);
      this.cardList.append(card);
    }
    return card;
  }

  renderFoot() {
    this.foot.replaceChildren();
    if (this.status !== 'running') {
      const status = element('span', `pill ${this.status}`, this.status);
      status.dataset.testid = 'message-status';
      if (this.finishReason) status.title = `finish_reason: ${this.finishReason}`;
      this.foot.append(status);
    }
    if (this.streamId) {
      const link = element('a', 'record-link', 'record');
      link.href = `#/streams/${encodeURIComponent(this.streamId)}`;
      link.title = `Open the record of stream ${this.streamId}`;
      link.dataset.testid = 'record-link';
      this.foot.append(link);
    }
  }
}
