// presence.js: the presenced client for browsers and React Native.
//
// A dependency-free ES module. It keeps one WebSocket to the hub, watches a
// set of users and keeps their presence in a local cache; it reconnects with
// backoff, subscribes again after every reconnect, notices a dead socket by
// an app-level ping, and falls back to REST polling when the socket cannot
// be opened, returning to the socket as soon as it can. See the README's
// "JavaScript client" section and presence.d.ts for the API.

/** The transports a client can be using. */
export const Transport = Object.freeze({ NONE: 'none', WEBSOCKET: 'websocket', POLLING: 'polling' });

/** The states a client can be in. */
export const State = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  PAUSED: 'paused',
  STOPPED: 'stopped',
  CLOSED: 'closed',
});

/** Default timings, in milliseconds, and limits. */
export const defaults = Object.freeze({
  backoffInitialMs: 500,
  backoffMaxMs: 30000,
  backoffFactor: 2,
  connectTimeoutMs: 10000,
  pingIntervalMs: 20000,
  pongTimeoutMs: 10000,
  requestTimeoutMs: 10000,
  pollIntervalMs: 10000,
  heartbeatIntervalMs: 30000,
  fallbackAfter: 2,
  maxIdsPerRequest: 100,
  refreshBeforeMs: 60000,
});

/** An error from the server or from the client's own checks. */
export class PresenceError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: number, refused?: boolean, lost?: boolean, cause?: unknown}} [info]
   */
  constructor(message, info = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = 'PresenceError';
    /** HTTP status of a failed REST request, if any. */
    this.status = info.status;
    /** WebSocket close code (4401 for a refused token on REST too) that stopped the client, if any. */
    this.code = info.code;
    /** True when the server answered a request with an error message. */
    this.refused = info.refused === true;
    /** True when the connection went before the answer came. */
    this.lost = info.lost === true;
  }
}

/**
 * shouldReconnect tells whether a WebSocket close code allows reconnecting:
 * the server uses 4400–4499 for "do not reconnect until something changes"
 * (bad request, invalid token, too many connections); every other code,
 * including 4000–4099 and abnormal closures, means "reconnect with backoff".
 * @param {number} code
 */
export function shouldReconnect(code) {
  return !(code >= 4400 && code <= 4499);
}

/**
 * decodeFrame parses one text frame from the server into its messages: the
 * server sends one JSON object, or a JSON array of presence events when
 * several were waiting.
 * @param {string} text
 * @returns {object[]}
 */
export function decodeFrame(text) {
  const v = JSON.parse(text);
  const list = Array.isArray(v) ? v : [v];
  for (const m of list) {
    if (m === null || typeof m !== 'object' || typeof m.type !== 'string') {
      throw new PresenceError('frame holds something other than a message object');
    }
  }
  return list;
}

/**
 * backoffDelay is the wait before reconnect attempt number attempt (0 for
 * the first): exponential, capped, with "equal jitter" so that many clients
 * cut off at once do not come back at once, yet none retries at once.
 * @param {number} attempt
 * @param {{backoffInitialMs: number, backoffMaxMs: number, backoffFactor: number}} t
 * @param {() => number} random a number in [0, 1)
 */
export function backoffDelay(attempt, t, random) {
  const cap = Math.min(t.backoffMaxMs, t.backoffInitialMs * Math.pow(t.backoffFactor, Math.min(attempt, 30)));
  return cap / 2 + random() * (cap / 2);
}

// The fields of a presence that watchers see change; a last_seen change
// alone is not a change, as on the server.
function samePresence(a, b) {
  return a.username === b.username && a.is_online === b.is_online && a.is_busy === b.is_busy &&
    a.wait_time === b.wait_time;
}

function toPresence(m) {
  return {
    user_id: m.user_id,
    username: m.username ?? '',
    is_online: m.is_online === true,
    is_busy: m.is_busy === true,
    wait_time: m.wait_time ?? null,
    last_seen: m.last_seen ?? null,
  };
}

function toUserIds(ids) {
  const list = Array.isArray(ids) ? ids : [ids];
  const out = [];
  for (const v of list) {
    const id = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (!Number.isSafeInteger(id) || id <= 0) {
      throw new TypeError(`user id ${JSON.stringify(v)} is not a positive integer`);
    }
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

function chunks(list, size) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/**
 * tokenExpiry returns the exp of a JWT in milliseconds since the epoch, or
 * 0 when the token is not a JWT with an exp (then it is never refreshed
 * ahead of time; the server's close 4002 still leads to a reconnect).
 * @param {string} token
 */
export function tokenExpiry(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4))).exp;
    return typeof exp === 'number' && exp > 0 ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

function isReactNative() {
  return typeof navigator !== 'undefined' && navigator.product === 'ReactNative';
}

function wsUrlOf(base) {
  return base.replace(/^http(s?):\/\//i, 'ws$1://') + '/ws';
}

function withParam(url, name, value) {
  return url + (url.includes('?') ? '&' : '?') + name + '=' + encodeURIComponent(value);
}

const noop = () => {};
const STATUS_FIELDS = ['is_online', 'is_busy', 'wait_time'];
const OPEN = 1; // WebSocket.OPEN on every platform

/**
 * PresenceClient watches users' presence on a presenced server and sets
 * the signed-in user's own status. Create one per signed-in user, call
 * connect(), and close() it at sign-out.
 */
export class PresenceClient {
  /** @param {import('./presence').PresenceClientOptions} options */
  constructor(options) {
    const o = options ?? {};
    if (typeof o.url !== 'string' || !/^https?:\/\//i.test(o.url)) {
      throw new TypeError('PresenceClient: url must be the server\'s http(s) address, e.g. "https://presence.example.com"');
    }
    if (typeof o.token !== 'string' && typeof o.token !== 'function') {
      throw new TypeError('PresenceClient: token must be a string or a function returning one');
    }
    this._base = o.url.replace(/\/+$/, '');
    this._wsUrl = o.wsUrl ?? wsUrlOf(this._base);
    this._token = o.token;
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    const f = o.fetch ?? globalThis.fetch;
    // A browser's fetch must not be called as a method of another object.
    this._fetch = f ? (url, init) => f.call(undefined, url, init) : undefined;
    if (!this._WebSocket && !this._fetch) {
      throw new TypeError('PresenceClient: this platform has neither WebSocket nor fetch; pass one in the options');
    }
    this._tokenIn = o.tokenIn ?? (isReactNative() ? 'header' : 'query');
    if (this._tokenIn !== 'header' && this._tokenIn !== 'query') {
      throw new TypeError('PresenceClient: tokenIn must be "header" or "query"');
    }
    /** @type {typeof defaults} */
    this._t = { ...defaults };
    for (const k of Object.keys(defaults)) {
      if (o[k] !== undefined) {
        if (typeof o[k] !== 'number' || !(o[k] >= 0)) throw new TypeError(`PresenceClient: ${k} must be a number >= 0`);
        this._t[k] = o[k];
      }
    }
    this._random = o.random ?? Math.random;

    this._state = State.IDLE;
    this._transport = Transport.NONE;
    this._lastError = null;
    this._listeners = new Map();
    this._cache = new Map(); // user id -> Presence, for known watched users
    this._watched = new Set(); // user ids
    this._waiters = new Set(); // subscribe() calls waiting for a snapshot
    this._requests = new Map(); // socket request id -> pending answer
    this._nextId = 1;
    this._timers = new Map();

    this._ws = null; // the current socket, open or opening
    this._wsReady = false; // the server has answered on the current socket
    this._attempt = 0; // reconnect attempts since the last good socket
    this._failures = 0; // socket attempts in a row that never got an answer
    this._polling = false;
    this._pollRunning = false;
    this._pollWanted = false;
  }

  /** The transport delivering presence now: 'websocket', 'polling' or 'none'. */
  get transport() { return this._transport; }

  /** 'idle', 'connecting', 'connected', 'paused', 'stopped' or 'closed'. */
  get state() { return this._state; }

  /** Why the client stopped (a PresenceError), when state is 'stopped'. */
  get lastError() { return this._lastError; }

  /** The ids of the watched users. */
  get watching() { return [...this._watched]; }

  /** A copy of the presence cache: user id -> Presence, for known users. */
  get presences() { return new Map(this._cache); }

  /**
   * get returns the cached presence of a watched user, or undefined when
   * the server does not know the user (or no snapshot has come yet).
   * @param {number} userId
   */
  get(userId) { return this._cache.get(userId); }

  /**
   * on adds a listener and returns a function that removes it. Events:
   * 'presence' (presence, previous), 'change' (userIds), 'transport'
   * (transport, previous), 'state' (state, previous), 'status'
   * (userStatus), 'error' (error).
   * @param {string} event
   * @param {Function} fn
   */
  on(event, fn) {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  _emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        // A listener's bug must not break the client; report it as an
        // uncaught error where the platform shows those.
        queueMicrotask(() => { throw err; });
      }
    }
  }

  /** connect starts the client (again, after pause or stop). */
  connect() {
    if (this._state === State.CLOSED) throw new PresenceError('the client is closed; create a new one');
    if (this._state === State.CONNECTING || this._state === State.CONNECTED) return;
    this._lastError = null;
    this._attempt = 0;
    this._failures = 0;
    this._setState(State.CONNECTING);
    this._openSocket();
  }

  /** resume is connect under the name an AppState handler looks for. */
  resume() { this.connect(); }

  /**
   * pause closes the socket and stops polling, keeping the watched users
   * and the (now stale) cache; resume() reconnects and refreshes it. Use it
   * when a mobile app goes to the background.
   */
  pause() {
    if (this._state === State.CLOSED || this._state === State.IDLE) return;
    this._teardown('paused');
    this._setState(State.PAUSED);
  }

  /** close stops the client for good and rejects what still waits. */
  close() {
    if (this._state === State.CLOSED) return;
    this._teardown('closed');
    this._setState(State.CLOSED);
    this._rejectWaiters(new PresenceError('the client was closed'));
  }

  /**
   * setToken replaces the token (or token function) used from the next
   * connection on; a client stopped by a refused token connects again.
   * @param {string | (() => string | Promise<string>)} token
   */
  setToken(token) {
    if (typeof token !== 'string' && typeof token !== 'function') {
      throw new TypeError('PresenceClient: token must be a string or a function returning one');
    }
    this._token = token;
    if (this._state === State.STOPPED) this.connect();
  }

  /**
   * subscribe watches users. The promise resolves with the presences of
   * the known ones among them once a snapshot holding them has arrived
   * (over the socket or by polling); if the client is not connected yet,
   * that happens when it connects.
   * @param {number | number[]} userIds
   * @returns {Promise<object[]>}
   */
  subscribe(userIds) {
    const ids = toUserIds(userIds);
    if (this._state === State.CLOSED) return Promise.reject(new PresenceError('the client is closed'));
    if (ids.length === 0) return Promise.resolve([]);
    for (const id of ids) this._watched.add(id);
    const done = new Promise((resolve, reject) => {
      this._waiters.add({ ids, remaining: new Set(ids), resolve, reject });
    });
    if (this._wsOpen()) {
      this._sendSubscribe(ids);
    } else if (this._polling) {
      this._pollNow();
    }
    return done;
  }

  /**
   * unsubscribe stops watching users and drops them from the cache.
   * @param {number | number[]} userIds
   * @returns {Promise<void>}
   */
  unsubscribe(userIds) {
    const ids = toUserIds(userIds).filter((id) => this._watched.has(id));
    if (ids.length === 0) return Promise.resolve();
    const changed = [];
    for (const id of ids) {
      this._watched.delete(id);
      if (this._cache.delete(id)) changed.push(id);
    }
    // Whoever waits for these ids waits no more.
    this._snapshotArrived(ids);
    if (changed.length) this._emit('change', changed);
    if (!this._wsOpen()) return Promise.resolve();
    return Promise.all(chunks(ids, this._t.maxIdsPerRequest).map((c) =>
      this._request({ type: 'unsubscribe', user_ids: c }).catch(noop))).then(noop);
  }

  /**
   * setStatus changes the signed-in user's status: any of is_online
   * (false means appear offline), is_busy, wait_time (minutes or null).
   * It goes over the socket when one is open, otherwise over REST, and
   * resolves with the server's UserStatus.
   * @param {{is_online?: boolean, is_busy?: boolean, wait_time?: number | null}} fields
   */
  async setStatus(fields) {
    if (fields === null || typeof fields !== 'object') throw new TypeError('setStatus takes an object such as {is_busy: true}');
    const body = {};
    for (const k of Object.keys(fields)) {
      if (!STATUS_FIELDS.includes(k)) throw new TypeError(`setStatus: unknown field ${k}; use is_online, is_busy or wait_time`);
      if (fields[k] !== undefined) body[k] = fields[k];
    }
    if (Object.keys(body).length === 0) throw new TypeError('setStatus: give at least one of is_online, is_busy, wait_time');
    if (this._state === State.CLOSED) throw new PresenceError('the client is closed');
    let status;
    if (this._wsOpen() && this._wsReady) {
      try {
        status = (await this._request({ type: 'set_status', ...body })).status;
      } catch (err) {
        if (err?.lost !== true) throw err;
        // The socket went before the answer; the change is idempotent, so
        // REST may carry it again.
      }
    }
    if (status === undefined) status = await this._rest('PUT', '/users/me/status', body);
    this._emit('status', status);
    return status;
  }

  // ---- state ----

  _setState(state) {
    if (state === this._state) return;
    const prev = this._state;
    this._state = state;
    this._emit('state', state, prev);
  }

  _setTransport(t) {
    if (t === this._transport) return;
    const prev = this._transport;
    this._transport = t;
    this._emit('transport', t, prev);
  }

  _running() {
    return this._state === State.CONNECTING || this._state === State.CONNECTED;
  }

  // The client has lost every transport but goes on trying.
  _lost() {
    this._setTransport(Transport.NONE);
    if (this._running()) this._setState(State.CONNECTING);
  }

  // A server refusal that retrying will not fix: stop until the app acts.
  _halt(err) {
    if (!this._running()) return;
    this._teardown('stopped');
    this._lastError = err;
    this._setState(State.STOPPED);
    this._emit('error', err);
    this._rejectWaiters(err);
  }

  _teardown(why) {
    for (const id of [...this._timers.keys()]) this._clearTimer(id);
    this._stopPolling();
    const ws = this._ws;
    if (ws) {
      this._forgetSocket();
      try { ws.close(1000, why); } catch { /* already closing */ }
    }
    this._setTransport(Transport.NONE);
  }

  _setTimer(name, ms, fn, repeat = false) {
    this._clearTimer(name);
    const h = repeat ? setInterval(fn, ms) : setTimeout(() => { this._timers.delete(name); fn(); }, ms);
    this._timers.set(name, { h, repeat });
  }

  _clearTimer(name) {
    const t = this._timers.get(name);
    if (!t) return;
    if (t.repeat) clearInterval(t.h); else clearTimeout(t.h);
    this._timers.delete(name);
  }

  _rejectWaiters(err) {
    for (const w of this._waiters) w.reject(err);
    this._waiters.clear();
  }

  // ---- the socket ----

  _wsOpen() {
    return this._ws !== null && this._ws.readyState === OPEN;
  }

  async _openSocket() {
    if (!this._running() || this._ws) return;
    if (!this._WebSocket) {
      this._startPolling();
      return;
    }
    let token;
    try {
      token = await this._resolveToken();
    } catch (err) {
      this._emit('error', new PresenceError('token function failed', { cause: err }));
      this._socketFailed();
      return;
    }
    if (!this._running() || this._ws) return;
    let ws;
    try {
      ws = this._tokenIn === 'header'
        // React Native (and Node's ws) take headers as a third argument.
        ? new this._WebSocket(this._wsUrl, [], { headers: { Authorization: 'Bearer ' + token } })
        : new this._WebSocket(withParam(this._wsUrl, 'access_token', token));
    } catch (err) {
      this._emit('error', new PresenceError('cannot create a WebSocket: ' + err.message, { cause: err }));
      this._socketFailed();
      return;
    }
    this._ws = ws;
    this._wsReady = false;
    this._wsTokenExp = tokenExpiry(token);
    // A socket must open and be answered in time: a proxy that accepts the
    // connection and then swallows it is as blocked as one that refuses.
    this._setTimer('connect', this._t.connectTimeoutMs, () => this._dropSocket(ws, 'no answer from the server in time'));
    ws.onopen = () => {
      if (this._ws !== ws) return;
      const ids = [...this._watched];
      if (ids.length) this._sendSubscribe(ids); else this._send({ type: 'ping', id: this._nextId++ });
    };
    ws.onmessage = (ev) => {
      if (this._ws === ws) this._onFrame(ev.data);
    };
    ws.onclose = (ev) => {
      if (this._ws === ws) this._socketClosed(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // Before open, some platforms report a refused connection only as an
      // error; after open, a close event always follows.
      if (this._ws === ws && ws.readyState !== OPEN) this._dropSocket(ws, 'the connection failed');
    };
  }

  // _dropSocket gives up on a socket the client no longer trusts.
  _dropSocket(ws, reason) {
    if (this._ws !== ws) return;
    this._socketClosed(1006, reason);
    try { ws.close(1000, reason.slice(0, 100)); } catch { /* already closed */ }
  }

  // _forgetSocket detaches the current socket and fails what waits on it.
  _forgetSocket() {
    const ws = this._ws;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = noop; // some implementations throw on an unheard error
    this._ws = null;
    this._wsReady = false;
    this._clearTimer('connect');
    this._clearTimer('ping');
    this._clearTimer('pong');
    this._clearTimer('refresh');
    const lost = new PresenceError('the connection closed before the answer', { lost: true });
    for (const r of this._requests.values()) {
      clearTimeout(r.timer);
      r.reject(lost);
    }
    this._requests.clear();
  }

  _socketClosed(code, reason) {
    const heard = this._wsReady;
    this._forgetSocket();
    if (!this._running()) return;
    if (!shouldReconnect(code)) {
      this._halt(new PresenceError(`the server closed the connection with ${code}${reason ? ': ' + reason : ''}`, { code }));
      return;
    }
    if (this._transport === Transport.WEBSOCKET) this._lost();
    if (heard) {
      this._failures = 0;
    } else {
      this._failures++;
    }
    this._socketFailed(false);
  }

  _socketFailed(count = true) {
    if (!this._running()) return;
    if (count) this._failures++;
    if (this._failures >= this._t.fallbackAfter && this._fetch) this._startPolling();
    const delay = backoffDelay(this._attempt++, this._t, this._random);
    this._setTimer('reconnect', delay, () => this._openSocket());
  }

  // _socketReady: the server answered on a fresh socket, so it is the
  // transport from now on.
  _socketReady() {
    this._wsReady = true;
    this._clearTimer('connect');
    this._attempt = 0;
    this._failures = 0;
    this._stopPolling();
    this._setTransport(Transport.WEBSOCKET);
    this._setState(State.CONNECTED);
    this._setTimer('ping', this._t.pingIntervalMs, () => this._ping(), true);
    this._scheduleRefresh(this._wsTokenExp);
  }

  // _scheduleRefresh plans to hand the socket a newer token before the one
  // it holds expires (the server closes it with 4002 at exp). Only a token
  // function can give a newer token.
  _scheduleRefresh(expMs) {
    this._clearTimer('refresh');
    if (typeof this._token !== 'function' || !expMs) return;
    const left = expMs - Date.now();
    const ahead = Math.min(this._t.refreshBeforeMs, left / 2);
    this._setTimer('refresh', Math.max(0, left - ahead), () => this._refresh(expMs));
  }

  async _refresh(oldExp) {
    if (!this._wsReady) return;
    const ws = this._ws;
    let token;
    try {
      token = await this._resolveToken();
    } catch (err) {
      this._emit('error', new PresenceError('token function failed', { cause: err }));
      return;
    }
    const exp = tokenExpiry(token);
    // The same token again would only ask again, sooner and sooner; let
    // the server close at exp and reconnect with whatever comes then.
    if (this._ws !== ws || !(exp > oldExp)) return;
    try {
      const r = await this._request({ type: 'refresh', token });
      this._scheduleRefresh(Date.parse(r.expires_at) || exp);
    } catch (err) {
      if (!err.lost) this._emit('error', err);
    }
  }

  // _ping asks for a pong: a socket whose peer vanished without a close
  // (a phone that lost its network, a NAT that forgot the flow) otherwise
  // looks open for minutes. Any frame counts as an answer.
  _ping() {
    if (!this._wsOpen()) return;
    this._send({ type: 'ping', id: this._nextId++ });
    if (!this._timers.has('pong')) {
      const ws = this._ws;
      this._setTimer('pong', this._t.pongTimeoutMs, () => this._dropSocket(ws, 'no pong within the deadline'));
    }
  }

  _send(msg) {
    try {
      this._ws.send(JSON.stringify(msg));
    } catch (err) {
      this._emit('error', new PresenceError('send failed: ' + err.message, { cause: err }));
    }
  }

  // _request sends a message with an id and resolves with its answer.
  _request(msg, extra) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._requests.delete(id);
        reject(new PresenceError(`no answer to ${msg.type} within ${this._t.requestTimeoutMs} ms`));
      }, this._t.requestTimeoutMs);
      this._requests.set(id, { ...extra, resolve, reject, timer });
      this._send({ ...msg, id });
    });
  }

  _sendSubscribe(ids) {
    for (const c of chunks(ids, this._t.maxIdsPerRequest)) {
      this._request({ type: 'subscribe', user_ids: c }, { ids: c }).catch((err) => {
        // Lost or unanswered: the next connection subscribes again.
        if (!err.refused) return;
        // The server refused these ids (a limit): stop watching them.
        for (const id of c) this._watched.delete(id);
        for (const w of this._waiters) {
          if (c.some((id) => w.remaining.has(id))) {
            this._waiters.delete(w);
            w.reject(err);
          }
        }
      });
    }
  }

  _onFrame(data) {
    if (typeof data !== 'string') {
      this._emit('error', new PresenceError('the server sent a binary frame'));
      return;
    }
    let msgs;
    try {
      msgs = decodeFrame(data);
    } catch (err) {
      this._emit('error', new PresenceError('bad frame from the server: ' + err.message, { cause: err }));
      return;
    }
    this._clearTimer('pong');
    if (!this._wsReady) this._socketReady();
    const changed = [];
    for (const m of msgs) this._onMessage(m, changed);
    if (changed.length) this._emit('change', changed);
  }

  _onMessage(m, changed) {
    const r = m.id !== undefined ? this._requests.get(m.id) : undefined;
    if (r) {
      this._requests.delete(m.id);
      clearTimeout(r.timer);
    }
    switch (m.type) {
      case 'presence':
        this._applyPresence(m, changed);
        break;
      case 'subscribed':
        if (r) {
          this._applySnapshot(r.ids, m.presences ?? [], changed);
          r.resolve(m);
        }
        break;
      case 'error': {
        const err = new PresenceError(m.detail ?? 'error from the server', { refused: true });
        if (r) r.reject(err); else this._emit('error', err);
        break;
      }
      default: // status, pong, unsubscribed, and types a newer server adds
        if (r) r.resolve(m);
    }
  }

  _applyPresence(m, changed) {
    if (!this._watched.has(m.user_id)) return; // an event that crossed an unsubscribe
    const p = toPresence(m);
    const prev = this._cache.get(p.user_id);
    this._cache.set(p.user_id, p);
    if (!prev || !samePresence(prev, p)) {
      changed.push(p.user_id);
      this._emit('presence', p, prev);
    }
  }

  // _applySnapshot replaces the cache entries of ids with presences (the
  // known ones among them) and wakes the subscribe() calls it satisfies.
  _applySnapshot(ids, presences, changed) {
    const known = new Set();
    for (const p of presences) {
      known.add(p.user_id);
      this._applyPresence(p, changed);
    }
    for (const id of ids) {
      if (!known.has(id) && this._cache.delete(id)) changed.push(id);
    }
    this._snapshotArrived(ids);
  }

  _snapshotArrived(ids) {
    for (const w of this._waiters) {
      for (const id of ids) w.remaining.delete(id);
      if (w.remaining.size === 0) {
        this._waiters.delete(w);
        w.resolve(w.ids.map((id) => this._cache.get(id)).filter(Boolean));
      }
    }
  }

  // ---- REST ----

  async _resolveToken() {
    const t = typeof this._token === 'function' ? await this._token() : this._token;
    if (typeof t !== 'string' || t === '') throw new PresenceError('the token function returned no token');
    return t;
  }

  async _rest(method, path, body) {
    if (!this._fetch) throw new PresenceError('no fetch on this platform; pass one in the options');
    const token = await this._resolveToken();
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), this._t.requestTimeoutMs) : undefined;
    let res;
    let text;
    try {
      res = await this._fetch(this._base + path, {
        method,
        headers: { Authorization: 'Bearer ' + token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: ctl?.signal,
      });
      text = await res.text();
    } catch (err) {
      throw new PresenceError(`${method} ${path} failed: ${err.message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    let data;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!res.ok) {
      const refusedToken = res.status === 401;
      const err = new PresenceError(`${method} ${path}: ${res.status} ${data?.detail ?? text.slice(0, 200)}`,
        { status: res.status, code: refusedToken ? 4401 : undefined });
      // A refused token is as final over REST as close 4401 on a socket.
      if (refusedToken) this._halt(err);
      throw err;
    }
    return data;
  }

  // ---- polling ----

  _startPolling() {
    if (this._polling || !this._running()) return;
    this._polling = true;
    this._setTimer('poll', this._t.pollIntervalMs, () => this._pollNow(), true);
    this._setTimer('heartbeat', this._t.heartbeatIntervalMs, () => this._heartbeat(), true);
    this._heartbeat().then(() => this._pollNow());
  }

  _stopPolling() {
    if (!this._polling) return;
    this._polling = false;
    this._clearTimer('poll');
    this._clearTimer('heartbeat');
  }

  // _heartbeat keeps the user online without a socket: the server counts
  // each heartbeat for its TTL (90 s by default), three times the interval.
  async _heartbeat() {
    if (!this._polling) return;
    try {
      await this._rest('POST', '/users/me/heartbeat');
      this._polled();
    } catch (err) {
      this._pollFailed(err);
    }
  }

  // _pollNow fetches the watched users' presence; calls that come while a
  // poll runs make one more poll afterwards, so results never cross.
  async _pollNow() {
    this._pollWanted = true;
    if (this._pollRunning) return;
    this._pollRunning = true;
    try {
      while (this._pollWanted && this._polling) {
        this._pollWanted = false;
        const ids = [...this._watched];
        const changed = [];
        try {
          for (const c of chunks(ids, this._t.maxIdsPerRequest)) {
            const list = await this._rest('GET', '/users/presence?user_ids=' + c.join(','));
            // A socket that took over meanwhile knows better.
            if (!this._polling) break;
            this._applySnapshot(c.filter((id) => this._watched.has(id)), list, changed);
          }
          this._polled();
        } catch (err) {
          this._pollFailed(err);
        }
        if (changed.length) this._emit('change', changed);
      }
    } finally {
      this._pollRunning = false;
    }
  }

  _polled() {
    if (!this._polling) return;
    this._setTransport(Transport.POLLING);
    this._setState(State.CONNECTED);
  }

  _pollFailed(err) {
    if (!this._polling) return;
    this._emit('error', err);
    // A server that answers (a 429, say) is still there; one that does not,
    // or fails, is not.
    if (err.status === undefined || err.status >= 500) this._lost();
  }
}
