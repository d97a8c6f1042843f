// The live figures of the current stream, measured in the browser: time to first token
// (from pressing send), tokens per second since the first token, and tool latency (the
// `duration_ms` the gateway reports for each call).

import { formatMs, formatRate } from './format.js';

export class Figures {
  constructor(root) {
    this.root = root;
    this.fields = {
      ttft: root.querySelector('[data-testid="figure-ttft"]'),
      tps: root.querySelector('[data-testid="figure-tps"]'),
      tokens: root.querySelector('[data-testid="figure-tokens"]'),
      tool: root.querySelector('[data-testid="figure-tool-latency"]'),
    };
    this.timer = null;
    this.reset();
  }

  reset() {
    this.stop();
    this.sentAt = null;
    this.firstTokenAt = null;
    this.lastTokenAt = null;
    this.tokens = 0;
    this.completionTokens = null;
    this.tools = [];
    this.draw();
  }

  /** The prompt was sent: the clock starts. */
  start() {
    this.reset();
    this.sentAt = performance.now();
    this.timer = setInterval(() => this.draw(), 250);
  }

  /** Takes in one event of the stream. */
  observe(type, data) {
    const now = performance.now();
    if (type === 'token' || type === 'reasoning') {
      if (this.firstTokenAt === null) this.firstTokenAt = now;
      this.lastTokenAt = now;
      this.tokens += 1;
    } else if (type === 'usage' && Number.isFinite(data.completion_tokens)) {
      this.completionTokens = data.completion_tokens;
    } else if ((type === 'tool.result' || type === 'tool.error') && Number.isFinite(data.duration_ms)) {
      this.tools.push({ ms: data.duration_ms, cached: Boolean(data.cached) });
    } else if (type === 'done') {
      this.stop();
    }
    this.draw();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  draw() {
    const { ttft, tps, tokens, tool } = this.fields;
    ttft.textContent = this.firstTokenAt === null || this.sentAt === null ? '–' : formatMs(this.firstTokenAt - this.sentAt);
    const count = this.completionTokens ?? this.tokens;
    tokens.textContent = count ? String(count) : '–';
    // While streaming, the rate runs to now; once the stream ends, to its last token.
    const end = this.timer ? performance.now() : this.lastTokenAt;
    const seconds = this.firstTokenAt === null || end === null ? 0 : (end - this.firstTokenAt) / 1000;
    tps.textContent = seconds > 0.2 && count > 1 ? formatRate((count - 1) / seconds) : '–';
    if (this.tools.length) {
      const last = this.tools[this.tools.length - 1];
      tool.textContent = formatMs(last.ms) + (last.cached ? ' (cached)' : '');
      tool.title = this.tools.map((t) => formatMs(t.ms) + (t.cached ? ' cached' : '')).join(', ');
    } else {
      tool.textContent = '–';
      tool.title = '';
    }
  }
}
