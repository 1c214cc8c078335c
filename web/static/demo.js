// The demo page: sign in as any user (dev mode), watch others, set your own
// status. Everything live goes through presence.js, the same client that
// apps use.

import { PresenceClient, State, Transport } from './presence.js';

const KEY = 'presenced-demo'; // sessionStorage: one user per tab
const $ = (id) => document.getElementById(id);

/** @type {{token: string, user_id: number, username: string, watched: number[]} | null} */
let session = null;
/** @type {PresenceClient | null} */
let client = null;
const rows = new Map(); // user id -> <li>
let busyRequest = false;

function save() {
  if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
  else sessionStorage.removeItem(KEY);
}

function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null');
    if (s && typeof s.token === 'string' && Number.isSafeInteger(s.user_id)) return { watched: [], ...s };
  } catch { /* start over */ }
  return null;
}

function showError(el, msg) {
  el.textContent = msg ?? '';
  el.hidden = !msg;
}

// ---- presence as words ----

function stateOf(p) {
  if (!p) return 'unknown';
  if (!p.is_online) return 'offline';
  return p.is_busy ? 'busy' : 'online';
}

function minutes(n) {
  if (n >= 60 && n % 60 === 0) return n === 60 ? '1 hour' : `${n / 60} hours`;
  return `${n} min`;
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 45) return 'just now';
  if (s < 90) return 'a minute ago';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return 'on ' + new Date(iso).toLocaleDateString();
}

function describe(p) {
  switch (stateOf(p)) {
    case 'unknown': return 'Never seen';
    case 'online': return 'Online';
    case 'busy': return p.wait_time != null ? `Busy · about ${minutes(p.wait_time)}` : 'Busy';
    default: return p.last_seen ? `Offline · last seen ${ago(p.last_seen)}` : 'Offline';
  }
}

function initial(name, id) {
  return (name?.trim()?.[0] ?? '#').toUpperCase() || String(id)[0];
}

function hue(id) {
  return (id * 137) % 360;
}

// ---- rendering ----

function renderPerson(id) {
  const li = rows.get(id);
  if (!li) return;
  const p = client.get(id);
  const state = stateOf(p);
  li.dataset.state = state;
  const name = p?.username || `User ${id}`;
  li.querySelector('.name').textContent = name;
  const detail = li.querySelector('.detail');
  detail.textContent = describe(p);
  detail.title = p?.last_seen ? 'Last seen ' + new Date(p.last_seen).toLocaleString() : '';
  const avatar = li.querySelector('.avatar');
  avatar.textContent = initial(p?.username, id);
  avatar.style.background = `hsl(${hue(id)} 45% 48%)`;
}

function renderMe() {
  const me = client.get(session.user_id);
  const connected = client.state === State.CONNECTED;
  // While connected, an offline self can only mean "appear offline".
  const hidden = connected && me !== undefined && !me.is_online;
  const busy = me?.is_busy === true;
  const avatar = $('me-avatar');
  avatar.dataset.state = connected ? stateOf(me) : 'unknown';
  avatar.textContent = initial(session.username, session.user_id);
  avatar.style.background = `hsl(${hue(session.user_id)} 45% 48%)`;
  $('me-name').textContent = `${session.username} · #${session.user_id}`;
  let text;
  if (!connected) text = client.state === State.STOPPED ? 'Disconnected' : 'Connecting…';
  else if (hidden) text = 'Appearing offline' + (busy ? ' (busy)' : '');
  else text = me ? describe(me) : 'Online';
  $('me-state').textContent = text;
  const busyBtn = $('toggle-busy');
  busyBtn.setAttribute('aria-pressed', String(busy));
  busyBtn.textContent = busy ? 'Busy — tap to end' : 'Busy';
  busyBtn.disabled = busyRequest;
  if (busy) $('wait-time').value = me.wait_time == null ? '' : String(me.wait_time);
  const hiddenBtn = $('toggle-hidden');
  hiddenBtn.setAttribute('aria-pressed', String(hidden));
  hiddenBtn.textContent = hidden ? 'Appear online' : 'Appear offline';
  hiddenBtn.disabled = busyRequest;
}

function renderTransport() {
  const el = $('transport');
  let key = client ? client.transport : Transport.NONE;
  let text = 'Not connected';
  if (client?.state === State.STOPPED) {
    key = 'stopped';
    text = 'Disconnected';
  } else if (client?.state === State.PAUSED) {
    text = 'Paused';
  } else if (key === Transport.WEBSOCKET) {
    text = 'Live · WebSocket';
  } else if (key === Transport.POLLING) {
    text = 'Polling · REST';
  } else if (client) {
    text = 'Connecting…';
  }
  el.dataset.transport = key;
  el.textContent = text;
}

function addRow(id) {
  if (rows.has(id)) return;
  const li = $('person').content.firstElementChild.cloneNode(true);
  li.dataset.userId = String(id);
  li.querySelector('.remove').addEventListener('click', () => unwatch(id));
  rows.set(id, li);
  $('list').append(li);
  $('empty').hidden = true;
  renderPerson(id);
}

// ---- actions ----

function parseIds(text) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const ids = [];
  for (const part of parts) {
    if (!/^\d+$/.test(part) || Number(part) <= 0 || !Number.isSafeInteger(Number(part))) {
      throw new Error(`"${part}" is not a user id: use positive whole numbers, e.g. 2, 3`);
    }
    const id = Number(part);
    if (id !== session.user_id && !ids.includes(id)) ids.push(id);
  }
  if (ids.length === 0) throw new Error('Give the id of someone other than yourself');
  return ids;
}

async function watch(ids) {
  for (const id of ids) {
    if (!session.watched.includes(id)) session.watched.push(id);
    addRow(id);
  }
  save();
  try {
    await client.subscribe(ids);
  } catch (err) {
    showError($('watch-error'), err.message);
  }
}

function unwatch(id) {
  session.watched = session.watched.filter((x) => x !== id);
  save();
  rows.get(id)?.remove();
  rows.delete(id);
  $('empty').hidden = rows.size > 0;
  client.unsubscribe([id]).catch(() => {});
}

async function changeStatus(update) {
  busyRequest = true;
  renderMe();
  showError($('me-error'));
  try {
    await client.setStatus(update);
  } catch (err) {
    showError($('me-error'), err.message);
  } finally {
    busyRequest = false;
    renderMe();
  }
}

function start() {
  $('signin').hidden = true;
  $('me').hidden = false;
  $('people').hidden = false;
  client = new PresenceClient({ url: location.origin, token: session.token, pollIntervalMs: 3000, backoffMaxMs: 10000 });
  client.on('change', (ids) => {
    for (const id of ids) {
      if (id === session.user_id) renderMe(); else renderPerson(id);
    }
  });
  client.on('transport', () => { renderTransport(); renderMe(); });
  client.on('state', (state) => {
    renderTransport();
    renderMe();
    if (state === State.STOPPED) {
      showError($('me-error'), client.lastError?.code === 4401
        ? 'The server refused the sign-in (a restarted dev server signs with a new key): sign out and in again.'
        : `Disconnected: ${client.lastError?.message}`);
    }
  });
  client.on('error', (err) => console.warn('presence:', err.message));
  client.connect();
  renderTransport();
  renderMe();
  client.subscribe([session.user_id]).catch(() => {});
  for (const id of session.watched) addRow(id);
  if (session.watched.length) client.subscribe(session.watched).catch(() => {});
  $('empty').hidden = rows.size > 0;
}

function signOut() {
  client?.close();
  client = null;
  session = null;
  save();
  rows.clear();
  $('list').replaceChildren();
  $('signin').hidden = false;
  $('me').hidden = true;
  $('people').hidden = true;
  showError($('me-error'));
  renderTransport();
}

// ---- wiring ----

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  const data = new FormData(form);
  const userId = Number(data.get('user_id'));
  const username = String(data.get('username')).trim();
  showError($('signin-error'));
  if (!Number.isSafeInteger(userId) || userId <= 0) {
    showError($('signin-error'), 'The user id must be a positive whole number');
    return;
  }
  form.querySelector('button').disabled = true;
  try {
    const res = await fetch('/dev/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_id: userId, username }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.status === 404 || res.status === 405) throw new Error('Sign-in is open only on a server run with -dev');
    if (!res.ok) throw new Error(body.detail ?? `Sign-in failed (${res.status})`);
    session = { token: body.access_token, user_id: userId, username, watched: [] };
    save();
    start();
  } catch (err) {
    showError($('signin-error'), err.message);
  } finally {
    form.querySelector('button').disabled = false;
  }
});

$('watch-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = ev.currentTarget.elements.ids;
  showError($('watch-error'));
  let ids;
  try {
    ids = parseIds(input.value);
  } catch (err) {
    showError($('watch-error'), err.message);
    return;
  }
  input.value = '';
  watch(ids);
});

$('toggle-busy').addEventListener('click', () => {
  const busy = client.get(session.user_id)?.is_busy === true;
  const wait = $('wait-time').value;
  changeStatus(busy ? { is_busy: false } : { is_busy: true, wait_time: wait === '' ? null : Number(wait) });
});

$('wait-time').addEventListener('change', () => {
  if (client.get(session.user_id)?.is_busy) {
    const wait = $('wait-time').value;
    changeStatus({ wait_time: wait === '' ? null : Number(wait) });
  }
});

$('toggle-hidden').addEventListener('click', () => {
  changeStatus({ is_online: $('toggle-hidden').getAttribute('aria-pressed') === 'true' });
});

$('signout').addEventListener('click', signOut);

// "Last seen 3 min ago" ages while the page is open.
setInterval(() => {
  if (!client) return;
  for (const id of rows.keys()) renderPerson(id);
}, 15000);

session = load();
if (session) start();
