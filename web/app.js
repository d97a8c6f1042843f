// The MidStream web app: a chat whose replies stream with their intents and tool calls, the
// history of recorded streams, and replays of them. No build step, nothing loaded from
// anywhere but this gateway.
//
// Views are chosen by the URL's hash: `#/` the chat, `#/history`, `#/streams/{id}` a record.

import { Api } from './api.js';
import { Figures } from './figures.js';
import { HistoryView } from './history.js';
import { Turn } from './message.js';
import { ReplayView } from './replay.js';
import { LiveStream } from './stream.js';

/** The model chosen when the gateway routes it: the built-in demo. */
const PREFERRED_MODEL = 'midstream-demo';
const MODEL_STORAGE = 'midstream.model';

const $ = (selector) => document.querySelector(selector);

const api = new Api();
const figures = new Figures($('[data-testid="figures"]'));
const history = new HistoryView(api, $('#history-view'));
const replay = new ReplayView(api, $('#replay-view'));
const statusBadge = $('[data-testid="connection-status"]');
const conversation = $('#conversation');
const promptBox = $('#prompt');
const sendButton = $('#send');
const stopButton = $('#stop');
const modelPicker = $('#model');

/** Finished turns, for the context of the next request. */
const turns = [];
/** The stream in progress: `{stream, turn}`. */
let active = null;

// --- connection status -------------------------------------------------------------------

const STATUS_TEXT = {
  idle: 'idle',
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  lost: 'connection lost',
  completed: 'completed',
  cancelled: 'cancelled',
  failed: 'failed',
  interrupted: 'interrupted',
  offline: 'gateway unreachable',
  locked: 'API key needed',
};

function setStatus(state) {
  statusBadge.dataset.state = state;
  statusBadge.textContent = STATUS_TEXT[state] ?? state;
}

// --- chat --------------------------------------------------------------------------------

async function send(prompt) {
  if (active || !prompt.trim()) return;
  const turn = new Turn(prompt);
  conversation.append(turn.element);
  document.body.classList.add('has-turns');
  promptBox.value = '';
  fitPrompt();
  scrollToEnd(true);

  const messages = [];
  for (const done of turns) {
    if (done.status !== 'completed' || !done.text) continue;
    messages.push({ role: 'user', content: done.prompt }, { role: 'assistant', content: done.text });
  }
  messages.push({ role: 'user', content: prompt });

  const stream = new LiveStream(api, {
    event: (type, data) => {
      const follow = nearEnd();
      turn.apply(type, data);
      figures.observe(type, data);
      if (type === 'done') {
        turn.noteDelivery(stream);
        end(turn, data.status ?? 'completed');
      }
      scrollToEnd(follow);
    },
    connection: (state) => {
      if (state === 'lost') recover(stream, turn);
      else setStatus(state);
    },
  });
  active = { stream, turn };
  setBusy(true);
  figures.start();
  try {
    const created = await stream.start({ model: modelPicker.value, messages });
    turn.setStreamId(created.id);
  } catch (error) {
    turn.showError(error.message);
    turn.finish('failed');
    end(turn, error.status === 401 ? 'locked' : error.status === 0 ? 'offline' : 'failed');
  }
}

/** The stream ended (or never started): the composer is free again. */
function end(turn, state) {
  if (!active || active.turn !== turn) return;
  active.stream.close();
  figures.stop();
  turns.push(turn);
  active = null;
  setBusy(false);
  setStatus(state);
  promptBox.focus();
}

/**
 * The EventSource closed for good before `done` (a reconnect was refused). The stream went
 * on at the server: its record has the whole reply once it ends.
 */
async function recover(stream, turn) {
  setStatus('lost');
  stream.close();
  for (let attempt = 0; attempt < 30 && active?.turn === turn; attempt += 1) {
    try {
      const record = await api.getStream(stream.id);
      if (record.status !== 'streaming') {
        turn.restore(record.response?.text ?? '', record.events ?? []);
        turn.finish(record.status);
        turn.noteDelivery({ ...stream, recovered: true });
        end(turn, record.status);
        return;
      }
    } catch {
      // Not recorded yet, or the gateway is away for a moment: try again.
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  if (active?.turn === turn) {
    turn.showError('Lost the connection to this stream. It may still finish at the gateway: see History.');
    turn.finish('interrupted');
    end(turn, 'lost');
  }
}

async function stop() {
  if (!active) return;
  stopButton.disabled = true;
  stopButton.textContent = 'Stopping…';
  try {
    await active.stream.cancel();
  } catch (error) {
    active?.turn.showError(`Could not stop the stream: ${error.message}`);
    stopButton.disabled = false;
  }
}

function setBusy(busy) {
  sendButton.disabled = busy;
  stopButton.disabled = !busy;
  stopButton.textContent = 'Stop';
  document.body.classList.toggle('busy', busy);
}

function newChat() {
  if (active) return;
  turns.length = 0;
  conversation.replaceChildren();
  document.body.classList.remove('has-turns');
  figures.reset();
  setStatus('idle');
  promptBox.focus();
}

function nearEnd() {
  return window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
}

function scrollToEnd(follow) {
  if (follow) window.scrollTo({ top: document.body.scrollHeight });
}

/** The prompt box grows with its text, up to a limit set in CSS. */
function fitPrompt() {
  promptBox.style.height = 'auto';
  promptBox.style.height = `${promptBox.scrollHeight}px`;
}

$('#composer').addEventListener('submit', (event) => {
  event.preventDefault();
  send(promptBox.value);
});
promptBox.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send(promptBox.value);
  }
});
promptBox.addEventListener('input', fitPrompt);
stopButton.addEventListener('click', stop);
$('#new-chat').addEventListener('click', newChat);
for (const button of document.querySelectorAll('.suggestion')) {
  button.addEventListener('click', () => send(button.textContent));
}

// --- API key -----------------------------------------------------------------------------

const keyPanel = $('#key-panel');
const keyField = $('#api-key');
const keyHint = $('#key-hint');
const keyToggle = $('#key-toggle');
const KEY_HINT = keyHint.innerHTML;

function showKeyPanel(message = null) {
  keyPanel.hidden = false;
  keyToggle.hidden = false;
  keyHint.classList.toggle('error', Boolean(message));
  if (message) keyHint.textContent = message;
  else keyHint.innerHTML = KEY_HINT;
  keyField.focus();
}

async function checkAccess() {
  const access = await api.checkAccess();
  document.body.dataset.access = access.ok ? 'ok' : access.keyNeeded ? 'key-needed' : 'unreachable';
  if (access.ok) {
    showModels(access.models);
    keyPanel.hidden = true;
    keyToggle.hidden = !api.key;
    if (statusBadge.dataset.state === 'locked' || statusBadge.dataset.state === 'offline') setStatus('idle');
  } else if (access.keyNeeded) {
    setStatus('locked');
    showKeyPanel(api.key ? 'This key was refused. Check it and try again.' : null);
  } else {
    setStatus('offline');
  }
  return access.ok;
}

/** Offers the models the gateway routes; the last choice is kept, else the demo, else the first. */
function showModels(models) {
  if (!models.length) return;
  const wanted = [localStorage.getItem(MODEL_STORAGE), modelPicker.value, PREFERRED_MODEL].find((m) => models.includes(m));
  modelPicker.replaceChildren(...models.map((id) => new Option(id, id)));
  modelPicker.value = wanted ?? models[0];
}
modelPicker.addEventListener('change', () => localStorage.setItem(MODEL_STORAGE, modelPicker.value));

api.onUnauthorized = () => {
  setStatus('locked');
  showKeyPanel(api.key ? 'This key was refused. Check it and try again.' : null);
};

keyPanel.addEventListener('submit', async (event) => {
  event.preventDefault();
  api.key = keyField.value.trim();
  keyField.value = '';
  if (await checkAccess()) refreshView();
});
$('#key-forget').addEventListener('click', () => {
  api.key = '';
  keyField.value = '';
  checkAccess();
});
keyToggle.addEventListener('click', () => {
  if (keyPanel.hidden) showKeyPanel();
  else keyPanel.hidden = true;
});

// --- views -------------------------------------------------------------------------------

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  const [view, id] = hash.startsWith('streams/') ? ['replay', hash.slice('streams/'.length)] : [hash === 'history' ? 'history' : 'chat', null];
  $('#chat-view').hidden = view !== 'chat';
  $('#history-view').hidden = view !== 'history';
  $('#replay-view').hidden = view !== 'replay';
  for (const link of document.querySelectorAll('.tabs a')) {
    link.toggleAttribute('aria-current', link.dataset.view === (view === 'replay' ? 'history' : view));
  }
  if (view !== 'replay') replay.leave();
  if (view === 'history') history.load(true);
  if (view === 'replay') replay.open(id);
  if (view === 'chat') promptBox.focus();
  window.scrollTo({ top: view === 'chat' ? document.body.scrollHeight : 0 });
}

function refreshView() {
  if (!$('#history-view').hidden) history.load(true);
  if (!$('#replay-view').hidden && replay.record === null) route();
}

$('#api-base').textContent = `${location.origin}/v1`;
window.addEventListener('hashchange', route);
route();
checkAccess();
