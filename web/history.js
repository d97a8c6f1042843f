// The list of recorded streams (`GET /v1/streams`), newest first, a page at a time.

import { element } from './dom.js';
import { formatDate, formatMs, formatWhen } from './format.js';

const PAGE = 20;

export class HistoryView {
  constructor(api, root) {
    this.api = api;
    this.list = root.querySelector('#history-list');
    this.more = root.querySelector('#history-more');
    this.notice = root.querySelector('#history-notice');
    this.next = null;
    this.loading = false;
    this.more.addEventListener('click', () => this.load(false));
    root.querySelector('#history-refresh').addEventListener('click', () => this.load(true));
  }

  /** Loads the first page again (`fresh`) or the next one. */
  async load(fresh = true) {
    if (this.loading) return;
    this.loading = true;
    this.more.disabled = true;
    try {
      const page = await this.api.listStreams({ limit: PAGE, after: fresh ? null : this.next });
      if (fresh) this.list.replaceChildren();
      for (const stream of page.data ?? []) this.list.append(item(stream));
      this.next = page.has_more ? page.next_after : null;
      this.more.hidden = !this.next;
      this.say(this.list.children.length ? '' : 'No recorded streams yet. Ask something in the chat.');
    } catch (error) {
      this.say(`Could not load the history: ${error.message}`, true);
    } finally {
      this.loading = false;
      this.more.disabled = false;
    }
  }

  say(message, isError = false) {
    this.notice.hidden = !message;
    this.notice.textContent = message;
    this.notice.classList.toggle('error', isError);
  }
}

function item(stream) {
  const li = element('li', 'history-item');
  li.dataset.testid = 'history-item';
  li.dataset.streamId = stream.id;
  const link = element('a');
  link.href = `#/streams/${encodeURIComponent(stream.id)}`;
  const prompt = element('span', 'history-prompt', stream.prompt || '(no prompt)');
  prompt.dataset.testid = 'history-prompt';
  const preview = element('span', 'history-preview', stream.preview || '');
  const meta = element('span', 'history-meta');
  const status = element('span', `pill ${stream.status ?? ''}`, stream.status ?? 'unknown');
  status.dataset.testid = 'history-status';
  const when = element('time', '', formatWhen(stream.created_at));
  when.dateTime = Number.isFinite(stream.created_at) ? new Date(stream.created_at).toISOString() : '';
  when.title = formatDate(stream.created_at);
  meta.append(status, when);
  if (Number.isFinite(stream.ttft_ms)) meta.append(element('span', '', `TTFT ${formatMs(stream.ttft_ms)}`));
  if (Number.isFinite(stream.duration_ms)) meta.append(element('span', '', formatMs(stream.duration_ms)));
  if (stream.model) meta.append(element('span', 'model', stream.model));
  link.append(prompt, preview, meta);
  li.append(link);
  return li;
}
