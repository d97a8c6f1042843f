// Tool cards: one per call, shown when `tool.started` arrives and filled in by `tool.result`
// or `tool.error`. The weather and calendar tools get cards of their own; any other tool a
// card showing its arguments and result as JSON.

import { element } from './dom.js';
import { formatMs } from './format.js';

/** Creates the card of a call from its `tool.started` event (or any later event of it). */
export function createCard(call) {
  const card = element('article', 'tool-card');
  card.dataset.testid = 'tool-card';
  card.dataset.tool = call.tool ?? 'tool';
  card.dataset.callId = call.id ?? '';
  card.dataset.state = 'running';
  // It rises into place once; showing its view again must not replay that.
  card.classList.add('fresh');
  card.addEventListener('animationend', function settle(event) {
    if (event.target !== card) return;
    card.classList.remove('fresh');
    card.removeEventListener('animationend', settle);
  });

  const head = element('header', 'tool-head');
  const name = element('span', 'tool-name', call.tool ?? 'tool');
  name.dataset.testid = 'tool-name';
  const badges = element('span', 'badges');
  const state = element('span', 'badge state', 'running');
  state.dataset.testid = 'tool-state';
  badges.append(state);
  head.append(toolIcon(call.tool), name, badges);

  const body = element('div', 'tool-body');
  body.append(pendingBody(call));

  const foot = element('footer', 'tool-foot');
  foot.textContent = origin(call);

  card.append(head, body, foot);
  return card;
}

/** Fills a card in from `tool.result` or `tool.error` (or a recorded call's outcome). */
export function finishCard(card, end) {
  const failed = Boolean(end.error) || end.type === 'tool.error' || end.status === 'failed';
  const badges = card.querySelector('.badges');
  const state = badges.querySelector('.state');
  card.dataset.state = failed ? 'error' : 'done';
  state.textContent = failed ? 'error' : 'done';
  badges.querySelectorAll('.cached, .duration').forEach((badge) => badge.remove());
  if (end.cached) {
    const cached = element('span', 'badge cached', 'cached');
    cached.dataset.testid = 'tool-cached';
    cached.title = 'Served from the tool cache (or a shared identical call)';
    badges.prepend(cached);
  }
  if (Number.isFinite(end.duration_ms)) {
    const duration = element('span', 'badge duration', formatMs(end.duration_ms));
    duration.dataset.testid = 'tool-duration';
    duration.title = 'How long the call took';
    badges.prepend(duration);
  }
  const body = card.querySelector('.tool-body');
  const tool = card.dataset.tool;
  body.replaceChildren(failed ? errorBody(end.error) : resultBody(tool, end.result, end.arguments));
}

/** Marks a card whose call never ended (the stream stopped first). */
export function abandonCard(card) {
  if (card.dataset.state !== 'running') return;
  card.dataset.state = 'abandoned';
  card.querySelector('.state').textContent = 'no result';
}

function origin(call) {
  if (call.intent_id) return `started by intent ${call.intent_id} · ${call.id}`;
  if (call.source === 'model') return `asked for by the model · ${call.id}`;
  return call.id ?? '';
}

function pendingBody(call) {
  const args = call.arguments ?? {};
  const line = element('p', 'pending');
  line.append(element('span', 'spinner'));
  if (call.tool === 'weather' && args.city) {
    line.append(`Looking up the weather in ${args.city}…`);
  } else if (call.tool === 'calendar' && args.action === 'create') {
    line.append(`Booking “${args.title ?? 'a meeting'}”${args.when ? `, ${args.when}` : ''}…`);
  } else {
    line.append('Calling…');
    return fragmentOf(line, json('arguments', args));
  }
  return line;
}

function resultBody(tool, result, args) {
  if (tool === 'weather' && result && typeof result === 'object') return weatherBody(result);
  if (tool === 'calendar' && result && typeof result === 'object') return calendarBody(result);
  return fragmentOf(json('arguments', args ?? {}), json('result', result));
}

function errorBody(error) {
  const box = element('p', 'tool-error');
  box.dataset.testid = 'tool-error';
  const code = element('code', '', error?.code ?? 'error');
  box.append(code, ' ', error?.message ?? 'The tool failed.');
  return box;
}

// --- weather -----------------------------------------------------------------------------

function weatherBody(weather) {
  const box = element('div', 'weather');
  const unit = weather.temperature_unit === 'fahrenheit' ? '°F' : '°C';
  const icon = element('span', 'weather-icon');
  icon.innerHTML = weatherIcon(weather.weather_code);
  const main = element('div', 'weather-main');
  const temperature = element('span', 'temperature', Number.isFinite(weather.temperature) ? `${Math.round(weather.temperature)}${unit}` : '–');
  temperature.dataset.testid = 'weather-temperature';
  const place = element('span', 'place', [weather.city, weather.country].filter(Boolean).join(', '));
  place.dataset.testid = 'weather-city';
  const conditions = element('span', 'conditions', weather.conditions ?? '');
  conditions.dataset.testid = 'weather-conditions';
  main.append(place, temperature, conditions);
  const facts = element('dl', 'weather-facts');
  if (Number.isFinite(weather.humidity)) facts.append(fact('Humidity', `${weather.humidity} %`));
  if (Number.isFinite(weather.wind_speed_kmh)) facts.append(fact('Wind', `${weather.wind_speed_kmh} km/h`));
  box.append(icon, main, facts);
  return box;
}

/** A small line icon for a WMO weather code (https://open-meteo.com/en/docs). */
function weatherIcon(code) {
  const sun = '<circle cx="12" cy="12" r="4"/><path d="M12 2v2M12 20v2M2 12h2M20 12h2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/>';
  const cloud = '<path d="M7 18h10a4 4 0 0 0 0-8 6 6 0 0 0-11.6 1.5A3.3 3.3 0 0 0 7 18z"/>';
  const small = '<path d="M7 15h9a3 3 0 0 0 0-6 4.6 4.6 0 0 0-8.8 1.2A2.5 2.5 0 0 0 7 15z"/>';
  const paths = {
    clear: sun,
    partly: '<circle cx="8" cy="8" r="3"/><path d="M8 2v1.5M2 8h1.5M3.8 3.8l1 1M12.2 3.8l-1 1"/>' + '<path d="M9 20h8a3.5 3.5 0 0 0 0-7 5 5 0 0 0-9.6 1.3A2.9 2.9 0 0 0 9 20z"/>',
    cloudy: cloud,
    fog: small + '<path d="M4 18h16M6 21h12"/>',
    rain: small + '<path d="M8 18l-1 3M12 18l-1 3M16 18l-1 3"/>',
    snow: small + '<path d="M8 19h.01M12 20h.01M16 19h.01M10 22h.01M14 22h.01"/>',
    storm: small + '<path d="M12 16l-2 4h3l-2 4"/>',
  };
  let kind = 'cloudy';
  if (code === 0) kind = 'clear';
  else if (code === 1 || code === 2) kind = 'partly';
  else if (code === 45 || code === 48) kind = 'fog';
  else if ((code >= 51 && code <= 67) || (code >= 80 && code <= 82)) kind = 'rain';
  else if ((code >= 71 && code <= 77) || code === 85 || code === 86) kind = 'snow';
  else if (code >= 95) kind = 'storm';
  return `<svg viewBox="0 0 24 24" aria-hidden="true" data-kind="${kind}">${paths[kind]}</svg>`;
}

// --- calendar ----------------------------------------------------------------------------

function calendarBody(result) {
  const box = element('div', 'calendar');
  const status = element('p', `calendar-status ${result.status ?? ''}`);
  status.dataset.testid = 'calendar-status';
  switch (result.status) {
    case 'booked':
      status.textContent = 'Booked';
      box.append(status, eventLine(result.event));
      break;
    case 'already_booked':
      status.textContent = 'Already booked';
      box.append(status, eventLine(result.event));
      break;
    case 'conflict':
      status.textContent = 'Conflict: not booked';
      box.append(status);
      if (result.requested) box.append(eventLine(result.requested, 'requested'));
      for (const other of result.conflicts ?? []) box.append(eventLine(other, 'conflicts with'));
      break;
    case 'free':
      status.textContent = 'The slot is free';
      box.append(status);
      if (result.requested) box.append(eventLine(result.requested));
      break;
    default:
      status.textContent = result.status === 'ok' ? `${(result.events ?? []).length} event(s)` : String(result.status ?? 'done');
      box.append(status);
      for (const event of result.events ?? []) box.append(eventLine(event));
  }
  return box;
}

function eventLine(event, label) {
  const line = element('div', 'calendar-event');
  line.dataset.testid = 'calendar-event';
  if (!event) return line;
  const when = element('div', 'when', slot(event.start, event.end));
  const what = element('div', 'what');
  if (label) what.append(element('span', 'label', `${label} `));
  what.append(element('strong', '', event.title ?? 'Event'));
  const attendees = (event.attendees ?? []).filter(Boolean);
  if (attendees.length) what.append(element('span', 'with', ` · with ${attendees.join(', ')}`));
  line.append(when, what);
  return line;
}

/**
 * "Thu 12 Jun, 15:00–16:00" from two RFC 3339 times, read as the wall-clock times they state
 * (the calendar's own zone), not converted into the browser's.
 */
function slot(start, end) {
  const a = wallClock(start);
  const b = wallClock(end);
  if (!a) return start ?? '';
  const day = `${a.weekday} ${a.day} ${a.month}`;
  if (!b) return `${day}, ${a.time}`;
  const sameDay = a.date === b.date;
  return sameDay ? `${day}, ${a.time}–${b.time}` : `${day}, ${a.time} – ${b.weekday} ${b.day} ${b.month}, ${b.time}`;
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function wallClock(rfc3339) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(rfc3339 ?? '');
  if (!match) return null;
  const [, y, m, d, hh, mm] = match;
  const weekday = WEEKDAYS[new Date(Date.UTC(+y, +m - 1, +d)).getUTCDay()];
  return { date: `${y}-${m}-${d}`, weekday, day: String(+d), month: MONTHS[+m - 1], time: `${hh}:${mm}` };
}

// --- pieces ------------------------------------------------------------------------------

function json(label, value) {
  const box = element('div', 'json');
  box.append(element('span', 'json-label', label));
  const pre = element('pre', '', JSON.stringify(value ?? null, null, 2));
  pre.dataset.testid = `tool-${label}`;
  box.append(pre);
  return box;
}

function fact(term, value) {
  const item = element('div');
  item.append(element('dt', '', term), element('dd', '', value));
  return item;
}

function toolIcon(tool) {
  const icon = element('span', 'tool-icon');
  const glyphs = {
    weather: '<path d="M7 18h10a4 4 0 0 0 0-8 6 6 0 0 0-11.6 1.5A3.3 3.3 0 0 0 7 18z"/>',
    calendar: '<rect x="3.5" y="5" width="17" height="15" rx="2"/><path d="M3.5 10h17M8 3v4M16 3v4"/>',
  };
  const glyph = glyphs[tool] ?? '<path d="M14.7 6.3a4 4 0 0 0-5.4 5.2L4 16.8V20h3.2l5.3-5.3a4 4 0 0 0 5.2-5.4l-2.4 2.4-2.6-.6-.6-2.6z"/>';
  icon.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true">${glyph}</svg>`;
  return icon;
}

function fragmentOf(...nodes) {
  const fragment = document.createDocumentFragment();
  fragment.append(...nodes);
  return fragment;
}
