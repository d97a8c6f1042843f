// Text that grows while it streams, with the intents that fired on it marked in place.
//
// An intent event says which rule fired, the text it matched and how many characters of
// the text the scanner had seen (`chars_seen`, in Unicode code points) when it fired. The
// match ends at or before that point, so the mark goes on the last occurrence of the matched
// text that ends there; until the tokens holding it have arrived the intent waits. A rule
// that hides its match (redact, stop) gets a point marker where it fired instead.
//
// Marks and markers are drawn by CSS (the rule name is an ::after pseudo-element), so the
// element's textContent is always exactly the streamed text.

export class MarkedText {
  /** @param {HTMLElement} element where the text is drawn */
  constructor(element) {
    this.element = element;
    this.text = '';
    this.marks = [];
    this.pending = [];
    this.render();
  }

  /** Adds streamed text at the end. */
  append(piece) {
    this.text += piece;
    this.tail.appendData(piece);
    if (this.pending.length) this.place(false);
  }

  /** Replaces the text and forgets every mark (a snapshot, or a replay starting over). */
  reset(text = '') {
    this.text = text;
    this.marks = [];
    this.pending = [];
    this.render();
  }

  /** Marks an intent on the text, now or once its text has arrived (once per intent id). */
  mark(intent) {
    const same = (other) => intent.id !== undefined && other.id === intent.id;
    if (this.marks.some((mark) => same(mark.intent)) || this.pending.some(same)) return;
    this.pending.push(intent);
    this.place(false);
  }

  /** The text is complete: places what still waits, at the best spot there is. */
  settle() {
    if (this.pending.length) this.place(true);
  }

  place(final) {
    const waiting = [];
    let placed = false;
    for (const intent of this.pending) {
      const span = this.locate(intent, final);
      if (span) {
        this.marks.push({ ...span, intent, fresh: true });
        placed = true;
      } else {
        waiting.push(intent);
      }
    }
    this.pending = waiting;
    if (placed) this.render();
  }

  locate(intent, final) {
    const seen = Number.isFinite(intent.chars_seen) ? codePointOffset(this.text, intent.chars_seen) : null;
    const matched = intent.matched;
    if (!matched) {
      if (seen !== null) return { start: seen, end: seen };
      return final ? { start: this.text.length, end: this.text.length } : null;
    }
    const limit = seen ?? this.text.length;
    let start = this.text.lastIndexOf(matched, limit - matched.length);
    if (start < 0 && final) start = this.text.lastIndexOf(matched);
    if (start < 0) {
      // Not in the text shown: either its tokens are still coming, or (at the end) the text
      // differs from what the scanner read. Then a marker at the point where it fired.
      return final ? { start: limit, end: limit } : null;
    }
    return { start, end: start + matched.length };
  }

  render() {
    const fragment = document.createDocumentFragment();
    const marks = [...this.marks].sort((a, b) => a.start - b.start || a.end - b.end);
    let position = 0;
    for (const mark of marks) {
      const { start, end, intent } = mark;
      // A mark that overlaps the previous one becomes a point marker where it ends.
      const from = Math.max(start, position);
      const to = Math.max(end, from);
      if (from > position) fragment.append(this.text.slice(position, from));
      const node = document.createElement(to > from && from === start ? 'mark' : 'span');
      node.className = node.localName === 'mark' ? 'intent' : 'intent-point';
      node.dataset.rule = intent.rule ?? 'intent';
      node.dataset.intentId = intent.id ?? '';
      node.dataset.testid = 'intent';
      node.title = describe(intent);
      if (mark.fresh) {
        // Only a new mark flashes, once: marks drawn again, or shown again, stay still.
        node.classList.add('fresh');
        node.addEventListener('animationend', () => node.classList.remove('fresh'), { once: true });
        mark.fresh = false;
      }
      if (node.localName === 'mark') {
        node.textContent = this.text.slice(from, to);
        position = to;
      } else {
        position = from;
      }
      fragment.append(node);
    }
    this.tail = document.createTextNode(this.text.slice(position));
    fragment.append(this.tail);
    this.element.replaceChildren(fragment);
  }
}

/** The UTF-16 offset after `count` code points of `text` (its length if it is shorter). */
function codePointOffset(text, count) {
  let offset = 0;
  for (let i = 0; i < count && offset < text.length; i += 1) {
    offset += text.codePointAt(offset) > 0xffff ? 2 : 1;
  }
  return offset;
}

function describe(intent) {
  const parts = [`rule ${intent.rule}`, `${intent.scope ?? 'output'} · ${intent.action ?? 'emit'}`];
  const captures = Object.entries(intent.captures ?? {});
  if (captures.length) parts.push(captures.map(([name, value]) => `${name} = ${value}`).join(', '));
  if (intent.call_id) parts.push(`${intent.duplicate ? 'reused' : 'started'} ${intent.call_id}`);
  return parts.join('\n');
}
