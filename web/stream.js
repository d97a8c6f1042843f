// One live stream: POST /v1/streams, then its events through an EventSource.
//
// EventSource reconnects by itself after a dropped connection, waiting the `retry:` the
// server sent (3 s) and sending `Last-Event-ID`; the server answers with exactly the events
// after it (or a `snapshot` first when its log no longer holds them). So a drop only shows
// as "reconnecting" until the next event arrives. `done` closes the source; after it the
// server would answer a reconnect with 204 anyway.

/** The named events of the contract; anything else is ignored. */
export const EVENT_NAMES = [
  'token', 'reasoning', 'intent', 'tool.started', 'tool.result', 'tool.error',
  'usage', 'error', 'snapshot', 'done',
];

export class LiveStream {
  /**
   * @param {import('./api.js').Api} api
   * @param {object} handlers
   *   `event(type, data)` for each event in order, `connection(state)` with `connecting`,
   *   `live`, `reconnecting` or `lost` (closed for good before `done`).
   */
  constructor(api, handlers) {
    this.api = api;
    this.handlers = handlers;
    /** The seq of the last event applied (seqs count from 0). */
    this.lastSeq = -1;
    this.duplicates = 0;
    this.gaps = 0;
    this.reconnects = 0;
    this.snapshots = 0;
    this.finished = false;
  }

  /** Starts the stream; resolves with the server's answer to the POST. */
  async start(body) {
    this.handlers.connection('connecting');
    this.created = await this.api.startStream(body);
    this.id = this.created.id;
    this.open(this.created.events_url);
    return this.created;
  }

  open(eventsUrl) {
    const source = new EventSource(eventsUrl);
    this.source = source;
    let dropped = false;
    source.addEventListener('open', () => {
      if (!this.finished) this.handlers.connection('live');
    });
    source.addEventListener('error', (event) => {
      // The server's own `error` event (a MessageEvent) has this name too: that one is data.
      if (event instanceof MessageEvent || this.finished) return;
      if (source.readyState === EventSource.CONNECTING) {
        if (!dropped) this.reconnects += 1;
        dropped = true;
        this.handlers.connection('reconnecting');
      } else {
        // CLOSED: the browser gave up (a reconnect was refused: the token expired, say).
        this.handlers.connection('lost');
      }
    });
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (message) => {
        if (!(message instanceof MessageEvent)) return;
        dropped = false;
        this.receive(name, message);
      });
    }
  }

  receive(name, message) {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    const seq = Number.isFinite(data.seq) ? data.seq : Number(message.lastEventId);
    if (Number.isFinite(seq) && seq >= 0) {
      // The server promises no duplicate and no gap after a reconnect. The counters let a
      // test check that promise; drawing a duplicate twice would only hurt the reader.
      if (name !== 'snapshot' && seq <= this.lastSeq) {
        this.duplicates += 1;
        return;
      }
      if (name !== 'snapshot' && this.lastSeq >= 0 && seq > this.lastSeq + 1) this.gaps += 1;
      this.lastSeq = seq;
    }
    if (name === 'snapshot') this.snapshots += 1;
    if (!this.finished) this.handlers.connection('live');
    if (name === 'done') this.close();
    this.handlers.event(name, data);
  }

  /** Asks the server to stop; the stream then ends with `done` (`cancelled`). */
  cancel() {
    if (this.finished || !this.created) return Promise.resolve(null);
    return this.api.cancel(this.created.cancel_url);
  }

  /** Stops listening (the stream itself runs on unless cancelled). */
  close() {
    this.finished = true;
    this.source?.close();
  }
}
