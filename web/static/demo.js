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
// The user's own UserStatus as the server last gave it: the client's
// answers, or the page's own read at sign-in (the public presence of an
// invisible user hides their call).
let ownStatus = null;

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

// span says a number of minutes as "12 min", "1 h 5 min", "2 h".
function span(n) {
  if (n < 60) return `${n} min`;
  const h = Math.floor(n / 60);
  return n % 60 ? `${h} h ${n % 60} min` : `${h} h`;
}

// busyText: "Busy for 12 min · about 3 min left", "Busy for 20 min" once
// past the wait time, "Busy for under a minute" at the start; without a
// busy_since (an older server, or a change not confirmed yet) only the
// wait time the user gave.
function busyText(busySince, waitTime) {
  const since = busySince ? Date.parse(busySince) : NaN;
  if (Number.isNaN(since)) return waitTime != null ? `Busy · ${minutes(waitTime)} expected` : 'Busy';
  const elapsed = Math.max(0, Date.now() - since) / 60000;
  const text = elapsed < 1 ? 'Busy for under a minute' : `Busy for ${span(Math.floor(elapsed))}`;
  if (waitTime == null) return text;
  const left = waitTime - elapsed;
  return left > 0 ? `${text} · about ${span(Math.ceil(left))} left` : text;
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
    case 'busy': return busyText(p.busy_since, p.wait_time);
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
  // A stale entry is what the page knew when it last heard the server:
  // greyed, and saying so.
  li.dataset.stale = String(p?.stale === true);
  const name = p?.username || `User ${id}`;
  li.querySelector('.name').textContent = name;
  const detail = li.querySelector('.detail');
  detail.textContent = p?.stale ? `Last known · ${describe(p)}` : describe(p);
  const seen = p?.last_seen ? 'Last seen ' + new Date(p.last_seen).toLocaleString() : '';
  detail.title = p?.stale ? `Not live since ${new Date(p.stale_since).toLocaleString()}` + (seen ? ` · ${seen}` : '') : seen;
  const avatar = li.querySelector('.avatar');
  avatar.textContent = initial(p?.username, id);
  avatar.style.background = `hsl(${hue(id)} 45% 48%)`;
}

// myView is the user's own status as this page should show it: what they
// asked for, over what the server last said. The public presence (our own
// subscription) is live, but hides the call of a user who appears offline.
function myView() {
  const me = client.get(session.user_id);
  const live = me && !me.stale ? me : null;
  const want = client.desiredStatus;
  // While this page is connected the user is online, so an offline self
  // can only mean "appear offline".
  let hidden = false;
  if (want.is_online !== undefined) hidden = !want.is_online;
  else if (live && client.state === State.CONNECTED) hidden = !live.is_online;
  else if (ownStatus) hidden = !ownStatus.is_online;
  const from = !hidden && live ? live : (ownStatus ?? live);
  const busy = want.is_busy ?? from?.is_busy === true;
  const wait = !busy ? null : 'wait_time' in want ? want.wait_time : (from?.wait_time ?? null);
  // A call the server has not confirmed yet has no start.
  const since = busy && from?.is_busy ? (from.busy_since ?? null) : null;
  return { hidden, busy, wait, since };
}

function renderMe() {
  const v = myView();
  const connected = client.state === State.CONNECTED;
  const avatar = $('me-avatar');
  avatar.dataset.state = !connected ? 'unknown' : v.hidden ? 'offline' : v.busy ? 'busy' : 'online';
  avatar.textContent = initial(session.username, session.user_id);
  avatar.style.background = `hsl(${hue(session.user_id)} 45% 48%)`;
  $('me-name').textContent = `${session.username} · #${session.user_id}`;
  let text = v.busy ? busyText(v.since, v.wait) : 'Online';
  if (v.hidden) text = 'Appearing offline' + (v.busy ? ' (busy)' : '');
  if (!connected) text = (client.state === State.STOPPED ? 'Disconnected' : 'Connecting…') + ` · ${text}`;
  if (client.statusPending) text += connected ? ' · sending…' : ' · will be sent when back online';
  $('me-state').textContent = text;
  const busyBtn = $('toggle-busy');
  busyBtn.setAttribute('aria-pressed', String(v.busy));
  busyBtn.textContent = v.busy ? 'Busy — tap to end' : 'Busy';
  if (v.busy) $('wait-time').value = v.wait == null ? '' : String(v.wait);
  const hiddenBtn = $('toggle-hidden');
  hiddenBtn.setAttribute('aria-pressed', String(v.hidden));
  hiddenBtn.textContent = v.hidden ? 'Appear online' : 'Appear offline';
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
  } else if (key === Transport.NONE && [...rows.keys()].some((id) => client.get(id)?.stale)) {
    text = 'Reconnecting · last known';
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

// changeStatus asks for a change and shows it at once: the client keeps
// the newest ask and makes the server hold it, so a tap is never lost to
// a bad network, and taps in a row need no waiting.
async function changeStatus(update) {
  showError($('me-error'));
  const asked = client.setStatus(update);
  renderMe();
  try {
    await asked;
  } catch (err) {
    // queued: still kept, and sent when the page is back online (renderMe says so).
    if (!err.queued) showError($('me-error'), err.message);
  } finally {
    renderMe();
  }
}

// readOwnStatus fetches the user's own status once, when the page first
// connects (then is_online false can only mean "appear offline"): after a
// reload the page has asked for nothing yet, and an invisible user's
// public presence does not show their call.
async function readOwnStatus(c) {
  try {
    const res = await fetch('/users/me/status', { headers: { Authorization: 'Bearer ' + session.token } });
    if (res.ok && client === c && !c.lastStatus) ownStatus = await res.json();
  } catch { /* the client's own answers will tell */ }
  if (client === c) renderMe();
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
  const c = client;
  let read = false;
  client.on('state', (state) => {
    if (state === State.CONNECTED && !read) {
      read = true;
      readOwnStatus(c);
    }
    renderTransport();
    renderMe();
    if (state === State.STOPPED) {
      showError($('me-error'), client.lastError?.code === 4401
        ? 'The server refused the sign-in (a restarted dev server signs with a new key): sign out and in again.'
        : `Disconnected: ${client.lastError?.message}`);
    }
  });
  client.on('status', (st) => {
    ownStatus = st;
    renderMe();
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
  ownStatus = null;
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
  const wait = $('wait-time').value;
  changeStatus(myView().busy ? { is_busy: false } : { is_busy: true, wait_time: wait === '' ? null : Number(wait) });
});

$('wait-time').addEventListener('change', () => {
  if (myView().busy) {
    const wait = $('wait-time').value;
    changeStatus({ wait_time: wait === '' ? null : Number(wait) });
  }
});

$('toggle-hidden').addEventListener('click', () => {
  changeStatus({ is_online: myView().hidden });
});

$('signout').addEventListener('click', signOut);

// "Last seen 3 min ago" and "Busy for 12 min" age while the page is open.
setInterval(() => {
  if (!client) return;
  for (const id of rows.keys()) renderPerson(id);
  renderMe();
}, 15000);

session = load();
if (session) start();
