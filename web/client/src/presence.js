// @presenced/client: the presenced client for browsers, React Native and
// Node.
//
// Dependency-free; built by build.mjs into dist/ as an ES module and a
// CommonJS module, and served by presenced itself at /presence.js. It keeps one WebSocket to the hub, watches a
// set of users and keeps their presence in a local cache, marked stale
// while no transport delivers it; it reconnects with backoff (at once when
// the network comes back), subscribes again after every reconnect, notices
// a dead socket by an app-level ping, and falls back to REST polling when
// the socket cannot be opened, returning to the socket as soon as it can.
// The signed-in user's status is state, not a stream of commands: the
// client keeps the status the app asked for and makes the server hold it.
// See the README's "JavaScript client" section and presence.d.ts for the API.

/**
 * The version of presenced's protocol this client speaks: the REST and
 * WebSocket API of the README, with device ids, busy_since and status
 * coalescing. It changes only with a major version of the package.
 */
export const PROTOCOL_VERSION = 1;

/** The transports a client can be using. */
export const Transport = Object.freeze({ NONE: 'none', WEBSOCKET: 'websocket', POLLING: 'polling' });

/** The states a client can be in. */
export const State = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  PAUSED: 'paused',
  BACKGROUND: 'background',
  STOPPED: 'stopped',
  CLOSED: 'closed',
});

/** Default timings, in milliseconds, and limits. */
export const defaults = Object.freeze({
  backoffInitialMs: 500,
  backoffMaxMs: 30000,
  backoffFactor: 2,
  connectTimeoutMs: 10000,
  answerTimeoutMs: 3000,
  pingIntervalMs: 20000,
  pongTimeoutMs: 10000,
  requestTimeoutMs: 10000,
  pollIntervalMs: 10000,
  heartbeatIntervalMs: 30000,
  fallbackAfter: 2,
  maxIdsPerRequest: 100,
  refreshBeforeMs: 60000,
  statusTimeoutMs: 30000,
  closeTimeoutMs: 1000,
  rateLimitBackoffMs: 5000,
});

/** An error from the server or from the client's own checks. */
export class PresenceError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: number, refused?: boolean, lost?: boolean, queued?: boolean,
   *   rateLimited?: boolean, retryAfterMs?: number, cause?: unknown}} [info]
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
    /** True when a setStatus was not confirmed in time: the client keeps it and sends it when it can. */
    this.queued = info.queued === true;
    /** True when the server dropped the message for going over its message rate. */
    this.rateLimited = info.rateLimited === true;
    // A REST 429's Retry-After, for the client's own retry.
    Object.defineProperty(this, 'retryAfterMs', { value: info.retryAfterMs, enumerable: false });
  }
}

/** The close code the server uses for a socket that ignored its message rate. */
const CLOSE_RATE_LIMITED = 4429;
/** The server's close codes for a token that expired on an open socket, and one refused at connect. */
const CLOSE_TOKEN_EXPIRED = 4002;
const CLOSE_TOKEN_REFUSED = 4401;

/**
 * shouldReconnect tells whether a WebSocket close code allows reconnecting:
 * the server uses 4400–4499 for "do not reconnect until something changes"
 * (bad request, invalid token, too many connections); every other code,
 * including 4000–4099 and abnormal closures, means "reconnect with backoff".
 * 4429 (too many messages) is the exception: it means "back off for several
 * seconds, then reconnect", because a client that keeps its status as
 * state can always come back without repeating the flood.
 * @param {number} code
 */
export function shouldReconnect(code) {
  return code === CLOSE_RATE_LIMITED || !(code >= 4400 && code <= 4499);
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
    a.wait_time === b.wait_time && a.busy_since === b.busy_since;
}

// toPresence makes a cache entry from a server message: a live one.
// busy_since is null from a server that does not send it yet.
function toPresence(m) {
  return {
    user_id: m.user_id,
    username: m.username ?? '',
    is_online: m.is_online === true,
    is_busy: m.is_busy === true,
    wait_time: m.wait_time ?? null,
    busy_since: m.busy_since ?? null,
    last_seen: m.last_seen ?? null,
    stale: false,
    stale_since: null,
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

// ---- the device id ----
//
// The server counts liveness per device (an app install, a browser tab):
// its socket, or its REST heartbeats while it has none. The id is opaque
// and kept, so that a restarted app is the same device.

const DEVICE_KEY = 'presenced.device_id';
const DEVICE_ID = /^[\x21-\x7e]{1,64}$/;

function newDeviceId() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof c?.getRandomValues === 'function') {
    c.getRandomValues(bytes);
  } else {
    // React Native without a crypto polyfill: the id is no secret, only unique.
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// browserStorage is localStorage where there is one; reading it throws in
// some sandboxed frames and with storage disabled.
function browserStorage() {
  try {
    const s = globalThis.localStorage;
    if (s && typeof s.getItem === 'function' && typeof s.setItem === 'function') return s;
  } catch { /* no storage here */ }
  return null;
}

function checkToken(token) {
  if (typeof token !== 'string' && typeof token !== 'function') {
    throw new TypeError('PresenceClient: token must be a string or a function returning one');
  }
}

function checkNetwork(source) {
  if (typeof source?.addEventListener !== 'function') {
    throw new TypeError('PresenceClient: network must have addEventListener(listener) returning an unsubscribe function, as NetInfo does');
  }
}

function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
}

// ---- the status the app asked for ----

const STATUS_FIELDS = ['is_online', 'is_busy', 'wait_time', 'last_seen_visible'];
const MAX_WAIT_TIME = 7 * 24 * 60; // the server's limit: a week, in minutes

// checkStatus validates a setStatus argument, so that the merged status the
// client keeps only ever holds what the server accepts.
function checkStatus(fields) {
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
    throw new TypeError('setStatus takes an object such as {is_busy: true}');
  }
  const out = {};
  for (const k of Object.keys(fields)) {
    if (!STATUS_FIELDS.includes(k)) throw new TypeError(`setStatus: unknown field ${k}; use is_online, is_busy, wait_time or last_seen_visible`);
    const v = fields[k];
    if (v === undefined) continue;
    if (k === 'wait_time') {
      if (v !== null && !(Number.isInteger(v) && v >= 0 && v <= MAX_WAIT_TIME)) {
        throw new TypeError(`setStatus: wait_time must be a whole number of minutes from 0 to ${MAX_WAIT_TIME}, or null; got ${JSON.stringify(v)}`);
      }
    } else if (typeof v !== 'boolean') {
      throw new TypeError(`setStatus: ${k} must be true or false; got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  if (Object.keys(out).length === 0) throw new TypeError('setStatus: give at least one of is_online, is_busy, wait_time, last_seen_visible');
  return out;
}

// mergeStatus applies fields to a status, with the server's rule that a
// wait time means nothing without a call: the merge then says what the
// server holds after the same requests in the same order.
function mergeStatus(into, fields) {
  Object.assign(into, fields);
  if (into.is_busy === false && 'wait_time' in into) into.wait_time = null;
  return into;
}

const noop = () => {};
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
    checkToken(o.token);
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
    if (o.network !== undefined) checkNetwork(o.network);
    // Network-state sources -> their unsubscribe function while listened to, else null.
    this._networks = new Map(o.network ? [[o.network, null]] : []);

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
    this._liveAt = 0; // when a transport last proved the cache current (ms)
    this._detach = null; // removes the network and visibility listeners

    this._ws = null; // the current socket, open or opening
    this._wsReady = false; // the server has answered on the current socket
    this._attempt = 0; // reconnect attempts since the last good socket
    this._failures = 0; // socket attempts in a row that never got an answer
    this._held = false; // the reconnect waits out a 4429: network news does not cut it short
    this._retrySoon = false; // network news came while a socket was opening: if it fails, retry at once
    this._hangs = false; // a socket here opened and never answered: poll at once, for the client's life
    this._warnedNoSocket = false;
    this._forceToken = false; // the server said the token expired: the next one is asked with forceRefresh
    this._forcedRetry = false; // a refused token was retried once with forceRefresh since the last good socket
    this._forcing = null; // the token function's pending forceRefresh call, shared
    this._polling = false;
    this._pollRunning = false;
    this._pollWanted = false;
    this._bgEpoch = 0; // counts background() and connect() calls, so a late close finds it is outdated
    this._bgReady = false; // in the background, the socket's close has completed

    this._calls = []; // setStatus calls not yet settled, or whose fields the server has not confirmed
    this._version = 0; // of the newest setStatus call
    this._confirmed = {}; // the status the server last confirmed (the merge that was sent)
    this._confirmedVersion = 0;
    this._inflight = null; // {version, body, via}: the one update on its way
    this._resend = false; // the server may not hold the status: send it again
    this._statusAttempt = 0; // REST retries of the status in a row
    this._ownStatus = null; // the UserStatus the server last answered

    this._initDevice(o);
  }

  /** The transport delivering presence now: 'websocket', 'polling' or 'none'. */
  get transport() { return this._transport; }

  /** 'idle', 'connecting', 'connected', 'paused', 'background', 'stopped' or 'closed'. */
  get state() { return this._state; }

  /** Why the client stopped (a PresenceError), when state is 'stopped'. */
  get lastError() { return this._lastError; }

  /** The ids of the watched users. */
  get watching() { return [...this._watched]; }

  /** A copy of the presence cache: user id -> Presence, for known users. */
  get presences() { return new Map(this._cache); }

  /** This device's id, sent on every request; null until an asynchronous store has answered. */
  get deviceId() { return this._deviceId; }

  /** The status the app has asked for: the merge of every field it has set (a copy). */
  get desiredStatus() { return this._desired(); }

  /** True while the server has not confirmed the status the app asked for. */
  get statusPending() {
    return this._version > this._confirmedVersion || this._inflight !== null ||
      (this._resend && Object.keys(this._desired()).length > 0);
  }

  /** The signed-in user's UserStatus as the server last answered it, or null. */
  get lastStatus() { return this._ownStatus; }

  /**
   * get returns the cached presence of a watched user, or undefined when
   * the server does not know the user (or no snapshot has come yet).
   * @param {number} userId
   */
  get(userId) { return this._cache.get(userId); }

  /**
   * on adds a listener and returns a function that removes it. Events:
   * 'presence' (presence, previous), 'change' (userIds), 'freshness'
   * (userIds, stale), 'withdrawn' (userIds), 'transport' (transport,
   * previous), 'state' (state, previous), 'status' (userStatus), 'error'
   * (error).
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

  /** connect starts the client (again, after pause, background or stop). */
  connect() {
    if (this._state === State.CLOSED) throw new PresenceError('the client is closed; create a new one');
    if (this._state === State.CONNECTING || this._state === State.CONNECTED) return;
    this._attachEnvironment();
    this._lastError = null;
    this._attempt = 0;
    this._failures = 0;
    this._held = false;
    this._bgEpoch++;
    this._bgReady = false;
    this._clearTimer('keepalive');
    this._clearTimer('statusRetry');
    this._setState(State.CONNECTING);
    // Sockets here open and then hang (a proxy that swallows them): poll
    // at once, and let the socket prove itself on its own time.
    if (this._hangs && this._canPoll()) this._startPolling();
    this._openSocket();
  }

  /** resume is connect under the name an AppState handler looks for. */
  resume() { this.connect(); }

  /** foreground is connect, the pair of background(). */
  foreground() { this.connect(); }

  /**
   * pause closes the socket and stops polling, keeping the watched users
   * and the (now stale) cache; resume() reconnects and refreshes it. The
   * user goes offline after the server's grace.
   */
  pause() {
    if (this._state === State.CLOSED || this._state === State.IDLE) return;
    this._teardown('paused');
    this._setState(State.PAUSED);
  }

  /**
   * background is pause for a phone app that leaves the foreground, with
   * one difference: while the user is busy (in a call, maybe in another
   * app), the device stays alive by REST heartbeats, sent once the
   * socket's close has completed, so the user stays online and busy. When
   * not busy, the client goes silent and the user goes offline after the
   * server's grace. foreground() comes back.
   */
  background() {
    const s = this._state;
    if (s === State.CLOSED || s === State.IDLE || s === State.STOPPED || s === State.BACKGROUND) return;
    const epoch = ++this._bgEpoch;
    this._bgReady = false;
    const closed = this._teardown('background');
    this._setState(State.BACKGROUND);
    // The server ends a device's REST liveness when its socket ends; a
    // heartbeat that overtook the close would be wiped by it.
    closed.then(() => {
      if (this._state !== State.BACKGROUND || this._bgEpoch !== epoch) return;
      this._bgReady = true;
      this._keepAlive();
      this._flushStatus();
    });
  }

  /** close stops the client for good and rejects what still waits. */
  close() {
    if (this._state === State.CLOSED) return;
    this._teardown('closed');
    this._setState(State.CLOSED);
    this._detach?.();
    this._detach = null;
    const err = new PresenceError('the client was closed');
    this._rejectWaiters(err);
    this._rejectCalls(err);
    this._calls = [];
  }

  /**
   * setToken replaces the token (or token function) used from the next
   * connection on; a client stopped by a refused token connects again.
   * @param {string | (() => string | Promise<string>)} token
   */
  setToken(token) {
    checkToken(token);
    this._token = token;
    if (this._state === State.STOPPED) this.connect();
  }

  /**
   * watchNetwork listens to a network-state source in NetInfo's shape, as
   * the network option does, for a client made before the source was at
   * hand (the React Native helper uses it). It returns the function that
   * stops listening; close() stops every source.
   * @param {{addEventListener(listener: (state: object) => void): (() => void) | {remove(): void}}} source
   * @returns {() => void}
   */
  watchNetwork(source) {
    checkNetwork(source);
    if (this._state === State.CLOSED) throw new PresenceError('the client is closed');
    if (!this._networks.has(source)) {
      this._networks.set(source, this._detach ? this._listenNetwork(source) : null);
    }
    return () => {
      const off = this._networks.get(source);
      this._networks.delete(source);
      off?.();
    };
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
   * The client keeps the merge of every field the app has set and makes
   * the server hold it; see "The status is the last word" in the README.
   * Resolves with the server's UserStatus once the server holds this call's
   * fields or a newer call's (a superseded call settles with that final
   * status); rejects after statusTimeoutMs with queued: true when no
   * transport could carry it, while the client keeps it and sends it later.
   * @param {{is_online?: boolean, is_busy?: boolean, wait_time?: number | null}} fields
   * @returns {Promise<object>}
   */
  setStatus(fields) {
    let update;
    try {
      update = checkStatus(fields);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this._state === State.CLOSED) return Promise.reject(new PresenceError('the client is closed'));
    return new Promise((resolve, reject) => {
      const call = { version: ++this._version, fields: update, resolve, reject, settled: false, timer: null };
      const ms = this._t.statusTimeoutMs;
      if (ms > 0 && ms < 2 ** 31) call.timer = setTimeout(() => this._statusTimedOut(call), ms);
      this._calls.push(call);
      this._keepAlive();
      this._flushStatus();
    });
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
    if (t === Transport.NONE) this._markStale();
    this._emit('transport', t, prev);
    // A switch to REST is a new path to the server: it may not hold our
    // status (a restart), so it is set again. The socket does the same in
    // _socketReady, for every new socket.
    if (t === Transport.POLLING) this._transportUp();
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
    if (!this._running() && this._state !== State.BACKGROUND) return;
    this._teardown('stopped');
    this._lastError = err;
    this._setState(State.STOPPED);
    this._emit('error', err);
    this._rejectWaiters(err);
    // The fields stay: connect() or setToken() sends them again.
    this._rejectCalls(err);
  }

  // _teardown stops every transport and timer. It resolves when the
  // socket's close has completed (its close event), or after
  // closeTimeoutMs, whichever comes first.
  _teardown(why) {
    for (const id of [...this._timers.keys()]) this._clearTimer(id);
    this._stopPolling();
    const ws = this._ws;
    let closed = Promise.resolve();
    if (ws) {
      this._forgetSocket();
      closed = new Promise((resolve) => {
        const timer = setTimeout(resolve, this._t.closeTimeoutMs);
        ws.onclose = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      try { ws.close(1000, why); } catch { /* already closing */ }
    }
    this._setTransport(Transport.NONE);
    return closed;
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

  // ---- the device id ----

  _initDevice(o) {
    this._deviceId = null;
    if (o.deviceId !== undefined) {
      if (typeof o.deviceId !== 'string' || !DEVICE_ID.test(o.deviceId)) {
        throw new TypeError('PresenceClient: deviceId must be 1 to 64 visible ASCII characters, without spaces');
      }
      this._deviceId = o.deviceId;
      this._deviceReady = Promise.resolve(o.deviceId);
      return;
    }
    if (o.storage !== undefined && (typeof o.storage?.getItem !== 'function' || typeof o.storage?.setItem !== 'function')) {
      throw new TypeError('PresenceClient: storage must have getItem and setItem, as localStorage and AsyncStorage do');
    }
    const store = o.storage ?? browserStorage();
    let got = null;
    if (store) {
      try {
        got = store.getItem(DEVICE_KEY);
      } catch (err) {
        this._storageFailed(err);
        got = null;
      }
    }
    if (isThenable(got)) {
      this._deviceReady = Promise.resolve(got).then(
        (v) => this._adoptDevice(store, v),
        (err) => { this._storageFailed(err); return this._adoptDevice(null, null); });
    } else {
      this._deviceReady = Promise.resolve(this._adoptDevice(store, got));
    }
  }

  // _adoptDevice takes the stored id, or makes one and stores it.
  _adoptDevice(store, value) {
    if (typeof value === 'string' && DEVICE_ID.test(value)) {
      this._deviceId = value;
      return value;
    }
    const id = newDeviceId();
    this._deviceId = id;
    if (store) {
      try {
        const r = store.setItem(DEVICE_KEY, id);
        if (isThenable(r)) Promise.resolve(r).catch((err) => this._storageFailed(err));
      } catch (err) {
        this._storageFailed(err);
      }
    }
    return id;
  }

  // A store that fails leaves an id kept in memory for the client's life.
  _storageFailed(err) {
    const e = new PresenceError('cannot keep the device id in the storage: ' + (err?.message ?? err), { cause: err });
    // Listeners are added after the constructor; let them be.
    queueMicrotask(() => this._emit('error', e));
  }

  // ---- network and visibility ----

  // _attachEnvironment listens for news that the network is back: the
  // browser's online event, a hidden tab shown again, or the app's
  // network-state source (NetInfo's shape).
  _attachEnvironment() {
    if (this._detach) return;
    const offs = [];
    const w = globalThis.window;
    if (w && typeof w.addEventListener === 'function') {
      const online = () => this._networkHint();
      w.addEventListener('online', online);
      offs.push(() => w.removeEventListener('online', online));
    }
    const d = globalThis.document;
    if (d && typeof d.addEventListener === 'function') {
      const shown = () => { if (d.visibilityState === 'visible') this._networkHint(); };
      d.addEventListener('visibilitychange', shown);
      offs.push(() => d.removeEventListener('visibilitychange', shown));
    }
    for (const [source, off] of this._networks) {
      if (!off) this._networks.set(source, this._listenNetwork(source));
    }
    this._detach = () => {
      for (const off of offs) off();
      for (const [source, off] of this._networks) {
        off?.();
        this._networks.set(source, null);
      }
    };
  }

  // _listenNetwork listens to one network-state source and returns the
  // function that stops it.
  _listenNetwork(source) {
    let up = null; // unknown until the source's first report
    const unsubscribe = source.addEventListener((s) => {
      const now = s?.isConnected === true && s?.isInternetReachable !== false;
      const was = up;
      up = now;
      // Back up: try now. Gone: check the socket now, instead of at the
      // next ping, so the cache shows stale sooner.
      if (now !== was) this._networkHint();
    });
    if (typeof unsubscribe === 'function') return unsubscribe;
    if (typeof unsubscribe?.remove === 'function') return () => unsubscribe.remove();
    return noop;
  }

  // _networkHint: the network may have changed. A client waiting to
  // reconnect tries at once (the wait was for a network that is back);
  // an open socket is pinged, since a network change often kills it
  // silently. A 4429 wait is kept: the network did not cause it.
  _networkHint() {
    if (this._state === State.BACKGROUND) {
      if (this._bgReady && this._timers.has('statusRetry')) {
        this._clearTimer('statusRetry');
        this._flushStatus();
      }
      return;
    }
    if (!this._running()) return;
    if (this._polling) this._pollNow();
    if (this._ws) {
      // An attempt begun on the old network is likely to fail: then the
      // next one goes at once rather than after the backoff.
      if (this._wsReady) this._ping(); else this._retrySoon = true;
      return;
    }
    if (this._held || !this._timers.has('reconnect')) return;
    this._clearTimer('reconnect');
    this._attempt = 0;
    this._openSocket();
  }

  // ---- freshness ----

  // _markStale: no transport delivers presence now, so every entry is the
  // last known one, as of the last time the server was heard.
  _markStale() {
    const since = new Date(this._liveAt || Date.now()).toISOString();
    const ids = [];
    for (const [id, p] of this._cache) {
      if (p.stale) continue;
      this._cache.set(id, { ...p, stale: true, stale_since: since });
      ids.push(id);
    }
    if (ids.length) {
      this._emit('freshness', ids, true);
      this._emit('change', ids);
    }
  }

  // ---- the socket ----

  _wsOpen() {
    return this._ws !== null && this._ws.readyState === OPEN;
  }

  async _openSocket() {
    if (!this._running() || this._ws) return;
    if (!this._WebSocket) {
      this._warnNoWebSocket();
      this._startPolling();
      return;
    }
    let token;
    let device;
    try {
      const force = this._forceToken;
      this._forceToken = false;
      token = force ? await this._freshToken() : await this._resolveToken();
      device = await this._deviceReady;
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
        ? new this._WebSocket(this._wsUrl, [], { headers: { Authorization: 'Bearer ' + token, 'X-Device-ID': device } })
        : new this._WebSocket(withParam(withParam(this._wsUrl, 'access_token', token), 'device_id', device));
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
      // Open but silent: a proxy that lets the handshake through and then
      // swallows the socket. That is worth polling for at once.
      this._setTimer('answer', this._t.answerTimeoutMs, () => {
        this._hangs = true;
        this._dropSocket(ws, `the socket opened but no answer came within ${this._t.answerTimeoutMs} ms`);
      });
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
    this._clearTimer('answer');
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
    const why = `the server closed the connection with ${code}${reason ? ': ' + reason : ''}`;
    if (code === CLOSE_TOKEN_REFUSED && typeof this._token === 'function' && !this._forcedRetry) {
      // An expired (or rotated) token that the app's function cached: ask
      // it once for a new one, at once, before giving up.
      this._forcedRetry = true;
      this._forceToken = true;
      this._setTimer('reconnect', 0, () => this._openSocket());
      return;
    }
    if (!shouldReconnect(code)) {
      this._halt(new PresenceError(why, { code }));
      return;
    }
    if (code === CLOSE_TOKEN_EXPIRED) this._forceToken = true;
    if (this._transport === Transport.WEBSOCKET) this._lost();
    if (heard) {
      this._failures = 0;
    } else {
      this._failures++;
    }
    let hold = 0;
    if (code === CLOSE_RATE_LIMITED) {
      // Several seconds, with jitter, so that a fleet of clients with the
      // same bug does not come back in step.
      hold = this._t.rateLimitBackoffMs * (1 + this._random());
      this._emit('error', new PresenceError(`${why}; reconnecting in ${Math.round(hold)} ms`, { code, rateLimited: true }));
    }
    this._socketFailed(false, hold);
  }

  _socketFailed(count = true, hold = 0) {
    if (!this._running()) return;
    if (count) this._failures++;
    if ((this._failures >= this._t.fallbackAfter || this._hangs) && this._canPoll()) this._startPolling();
    let delay = Math.max(backoffDelay(this._attempt++, this._t, this._random), hold);
    if (this._retrySoon && hold === 0) {
      this._attempt = 0;
      delay = 0;
    }
    this._retrySoon = false;
    this._held = hold > 0;
    this._setTimer('reconnect', delay, () => {
      this._held = false;
      this._openSocket();
    });
  }

  // _socketReady: the server answered on a fresh socket, so it is the
  // transport from now on.
  _socketReady() {
    this._wsReady = true;
    this._retrySoon = false;
    this._hangs = false;
    this._forcedRetry = false;
    this._clearTimer('connect');
    this._clearTimer('answer');
    this._attempt = 0;
    this._failures = 0;
    this._stopPolling();
    this._setTransport(Transport.WEBSOCKET);
    this._setState(State.CONNECTED);
    this._setTimer('ping', this._t.pingIntervalMs, () => this._ping(), true);
    this._scheduleRefresh(this._wsTokenExp);
    this._transportUp();
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
      // A function that caches tokens may hand back the one about to
      // expire: ask it, once, for a new one.
      if (!(tokenExpiry(token) > oldExp) && this._ws === ws) token = await this._freshToken();
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

  // _request sends a message with an id and resolves with its answer. With
  // extra.dropOnTimeout, no answer in time means the socket is broken: it
  // is dropped (and replaced) and the request fails as lost.
  _request(msg, extra) {
    const id = this._nextId++;
    const ws = this._ws;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._requests.delete(id);
        const what = `no answer to ${msg.type} within ${this._t.requestTimeoutMs} ms`;
        if (extra?.dropOnTimeout) {
          this._dropSocket(ws, what);
          reject(new PresenceError(what, { lost: true }));
        } else {
          reject(new PresenceError(what));
        }
      }, this._t.requestTimeoutMs);
      this._requests.set(id, { ...extra, resolve, reject, timer });
      this._send({ ...msg, id });
    });
  }

  _sendSubscribe(ids) {
    const ws = this._ws;
    for (const c of chunks(ids, this._t.maxIdsPerRequest)) {
      this._request({ type: 'subscribe', user_ids: c }, { ids: c }).catch((err) => {
        // Lost or unanswered: the next connection subscribes again.
        if (!err.refused) return;
        if (err.rateLimited) {
          // Dropped, not refused: ask again once the rate allows.
          const wait = this._t.rateLimitBackoffMs * (0.2 + 0.2 * this._random());
          this._setTimer('resubscribe:' + this._nextId++, wait, () => {
            const still = c.filter((id) => this._watched.has(id));
            if (this._ws === ws && this._wsReady && still.length) this._sendSubscribe(still);
          });
          return;
        }
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
    this._liveAt = Date.now();
    this._clearTimer('pong');
    if (!this._wsReady) this._socketReady();
    const out = { changed: [], fresh: [] };
    for (const m of msgs) this._onMessage(m, out);
    this._emitChanges(out);
  }

  _emitChanges(out) {
    if (out.fresh.length) this._emit('freshness', out.fresh, false);
    if (out.changed.length) this._emit('change', out.changed);
  }

  _onMessage(m, out) {
    const r = m.id !== undefined ? this._requests.get(m.id) : undefined;
    if (r) {
      this._requests.delete(m.id);
      clearTimeout(r.timer);
    }
    switch (m.type) {
      case 'presence':
        this._applyPresence(m, out);
        break;
      case 'subscribed':
        if (r) {
          this._applySnapshot(r.ids, m.presences ?? [], out);
          r.resolve(m);
        }
        break;
      case 'error': {
        const detail = typeof m.detail === 'string' ? m.detail : 'error from the server';
        const err = new PresenceError(detail, { refused: true, rateLimited: /^rate limit\b/i.test(detail) });
        if (r) r.reject(err); else this._emit('error', err);
        break;
      }
      case 'unsubscribed':
        if (r) r.resolve(m);
        else this._withdrawn(m.user_ids, out); // the server ended these: the watch policy no longer allows them
        break;
      default: // status, pong, and types a newer server adds
        if (r) r.resolve(m);
    }
  }

  // _withdrawn drops users whose subscription the server ended by itself
  // (the watch policy withdrew them), so that the app shows nothing it no
  // longer hears about, and tells the app.
  _withdrawn(userIds, out) {
    if (!Array.isArray(userIds)) return;
    const ids = userIds.filter((id) => this._watched.delete(id));
    if (!ids.length) return;
    for (const id of ids) if (this._cache.delete(id)) out.changed.push(id);
    this._emit('withdrawn', ids);
  }

  _applyPresence(m, out) {
    if (!this._watched.has(m.user_id)) return; // an event that crossed an unsubscribe
    const p = toPresence(m);
    const prev = this._cache.get(p.user_id);
    this._cache.set(p.user_id, p);
    if (!prev || !samePresence(prev, p)) {
      out.changed.push(p.user_id);
      if (prev?.stale) out.fresh.push(p.user_id);
      this._emit('presence', p, prev);
    } else if (prev.stale) {
      out.changed.push(p.user_id);
      out.fresh.push(p.user_id);
    }
  }

  // _applySnapshot replaces the cache entries of ids with presences (the
  // known ones among them) and wakes the subscribe() calls it satisfies.
  _applySnapshot(ids, presences, out) {
    const known = new Set();
    for (const p of presences) {
      known.add(p.user_id);
      this._applyPresence(p, out);
    }
    for (const id of ids) {
      if (!known.has(id) && this._cache.delete(id)) out.changed.push(id);
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

  // ---- the signed-in user's status ----
  //
  // The status is state, not a stream of commands. _calls holds every
  // setStatus call the server has not confirmed (and those still waiting
  // for the final status); the status the app wants, _desired(), is the
  // last confirmed one with the fields of every later call merged over it.
  // One update at most is in flight, on one transport: the whole desired
  // status, so that whichever arrives last is right. Calls that come
  // meanwhile wait for it and then go together as one update. A socket
  // that goes before the answer leaves the update unconfirmed; it goes
  // again on whatever transport comes next, never on two at once. Every
  // new socket and every switch to polling sets the status again
  // (_transportUp), since the server may have lost it in a restart.

  _desired() {
    const d = { ...this._confirmed };
    for (const c of this._calls) {
      if (c.version > this._confirmedVersion) mergeStatus(d, c.fields);
    }
    return d;
  }

  // _busy: the device must stay alive in the background only for a busy user.
  _busy() {
    const d = this._desired();
    if (d.is_busy !== undefined) return d.is_busy;
    return this._ownStatus?.is_busy === true;
  }

  _transportUp() {
    if (Object.keys(this._desired()).length) this._resend = true;
    this._statusAttempt = 0;
    this._clearTimer('statusRetry');
    this._flushStatus();
  }

  // _statusRoute says which transport may carry the status now, if any.
  _statusRoute() {
    if (this._state === State.BACKGROUND) return this._bgReady && this._fetch ? 'rest' : null;
    if (!this._running()) return null;
    if (this._wsReady && this._wsOpen()) return 'websocket';
    if (this._polling && this._transport === Transport.POLLING) return 'rest';
    return null;
  }

  _flushStatus() {
    if (this._inflight || this._timers.has('statusRetry')) return;
    if (this._version <= this._confirmedVersion && !this._resend) return;
    const body = this._desired();
    if (Object.keys(body).length === 0) {
      this._resend = false;
      return;
    }
    const via = this._statusRoute();
    if (!via) return;
    this._resend = false;
    const inflight = { version: this._version, body, via };
    this._inflight = inflight;
    const sent = via === 'websocket'
      ? this._request({ type: 'set_status', ...body }, { dropOnTimeout: true }).then((m) => m.status)
      : this._rest('PUT', '/users/me/status', body);
    sent.then((status) => this._statusDone(inflight, status), (err) => this._statusFailed(inflight, err));
  }

  _statusDone(inflight, status) {
    if (this._inflight !== inflight) return;
    this._inflight = null;
    if (this._state === State.CLOSED) return;
    this._statusAttempt = 0;
    this._confirmed = inflight.body;
    this._confirmedVersion = inflight.version;
    if (status && typeof status === 'object') this._ownStatus = status;
    const final = inflight.version === this._version;
    const keep = [];
    for (const c of this._calls) {
      if (c.version > inflight.version) {
        keep.push(c);
      } else if (!c.settled) {
        // A superseded call waits for the final status.
        if (final) this._settle(c, null, status); else keep.push(c);
      }
    }
    this._calls = keep;
    this._emit('status', status);
    this._keepAlive();
    this._flushStatus();
  }

  _statusFailed(inflight, err) {
    if (this._inflight !== inflight) return;
    this._inflight = null;
    if (this._state === State.CLOSED || this._state === State.STOPPED) return;
    const refused = err.status !== undefined
      ? err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429
      : err.refused && !err.rateLimited;
    if (refused) {
      // The server will not take these fields: the calls that brought them
      // fail, and the status goes back to the last confirmed one with the
      // later calls over it. Earlier calls, confirmed already, settle with
      // the status the server holds.
      const keep = [];
      for (const c of this._calls) {
        if (c.version > inflight.version) keep.push(c);
        else if (!c.settled) this._settle(c, c.version > this._confirmedVersion ? err : null, this._ownStatus);
      }
      this._calls = keep;
      this._emit('error', err);
      this._flushStatus();
      return;
    }
    // Unconfirmed: the server may or may not hold it, so it goes again.
    this._resend = true;
    if (inflight.via === 'websocket' && err.lost) return; // the next socket (or polling) sends it
    const wait = Math.max(backoffDelay(this._statusAttempt++, this._t, this._random), err.retryAfterMs ?? 0);
    this._setTimer('statusRetry', wait, () => this._flushStatus());
  }

  _statusTimedOut(call) {
    if (call.settled) return;
    if (call.version <= this._confirmedVersion) {
      // Confirmed, then superseded by calls still on their way.
      this._settle(call, null, this._ownStatus);
      this._calls = this._calls.filter((c) => c !== call);
      return;
    }
    // Its fields stay in the desired status and go when they can.
    this._settle(call, new PresenceError(
      `the status was not confirmed within ${this._t.statusTimeoutMs} ms; the client keeps it and sends it when it can`,
      { queued: true }));
  }

  _settle(call, err, status) {
    if (call.settled) return;
    call.settled = true;
    clearTimeout(call.timer);
    if (err) call.reject(err); else call.resolve(status);
  }

  // _rejectCalls fails the calls whose fields the server has not
  // confirmed; those it has (superseded, waiting for the final status)
  // settle with the status it holds.
  _rejectCalls(err) {
    for (const c of this._calls) {
      this._settle(c, c.version > this._confirmedVersion ? err : null, this._ownStatus);
    }
    this._calls = this._calls.filter((c) => c.version > this._confirmedVersion);
  }

  // _keepAlive runs REST heartbeats in the background while the user is
  // busy, and stops them otherwise.
  _keepAlive() {
    if (this._state !== State.BACKGROUND || !this._bgReady) return;
    if (!this._busy() || !this._fetch) {
      this._clearTimer('keepalive');
      return;
    }
    if (this._timers.has('keepalive')) return;
    this._setTimer('keepalive', this._t.heartbeatIntervalMs, () => this._keepAliveBeat(), true);
    this._keepAliveBeat();
  }

  async _keepAliveBeat() {
    try {
      await this._rest('POST', '/users/me/heartbeat');
    } catch (err) {
      if (this._state === State.BACKGROUND) this._emit('error', err);
    }
  }

  // ---- REST ----

  // _resolveToken asks the token function (if any) for a token; with
  // forceRefresh, for a new one rather than one it cached.
  async _resolveToken(forceRefresh = false) {
    const t = typeof this._token === 'function' ? await this._token({ forceRefresh }) : this._token;
    if (typeof t !== 'string' || t === '') throw new PresenceError('the token function returned no token');
    return t;
  }

  // _freshToken is _resolveToken(true), shared by the requests that learn
  // at the same time that the token has expired.
  _freshToken() {
    if (!this._forcing) {
      const p = this._resolveToken(true);
      this._forcing = p;
      const clear = () => { if (this._forcing === p) this._forcing = null; };
      p.then(clear, clear);
    }
    return this._forcing;
  }

  _canPoll() {
    return this._fetch !== undefined && this._t.fallbackAfter !== Infinity;
  }

  // _warnNoWebSocket says once why the client polls: a platform without
  // WebSocket (Node before 22 without the ws package).
  _warnNoWebSocket() {
    if (this._warnedNoSocket) return;
    this._warnedNoSocket = true;
    const err = new PresenceError('no WebSocket here, so the client polls; in Node, pass the ws package as the WebSocket option');
    if (this._listeners.get('error')?.size) this._emit('error', err);
    else if (typeof console !== 'undefined') console.warn('presenced: ' + err.message);
  }

  // _rest makes one REST request. A 401 with a token function is tried
  // once more with a token asked for with forceRefresh (a cached one may
  // have expired); a second 401 stops the client.
  async _rest(method, path, body, forced = false) {
    if (!this._fetch) throw new PresenceError('no fetch on this platform; pass one in the options');
    const token = forced ? await this._freshToken() : await this._resolveToken();
    const device = await this._deviceReady;
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), this._t.requestTimeoutMs) : undefined;
    let res;
    let text;
    try {
      res = await this._fetch(this._base + path, {
        method,
        headers: {
          Authorization: 'Bearer ' + token,
          'X-Device-ID': device,
          ...(body ? { 'Content-Type': 'application/json' } : {}),
        },
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
      const retryAfter = Number(res.headers?.get?.('Retry-After'));
      const err = new PresenceError(`${method} ${path}: ${res.status} ${data?.detail ?? text.slice(0, 200)}`, {
        status: res.status,
        code: refusedToken ? 4401 : undefined,
        retryAfterMs: retryAfter > 0 ? retryAfter * 1000 : undefined,
      });
      if (refusedToken && !forced && typeof this._token === 'function') return this._rest(method, path, body, true);
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

  // _heartbeat keeps the device alive without a socket: the server counts
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
        const out = { changed: [], fresh: [] };
        try {
          for (const c of chunks(ids, this._t.maxIdsPerRequest)) {
            const list = await this._rest('GET', '/users/presence?user_ids=' + c.join(','));
            // A socket that took over meanwhile knows better.
            if (!this._polling) break;
            this._liveAt = Date.now();
            this._applySnapshot(c.filter((id) => this._watched.has(id)), list, out);
          }
          // Only an answer proves the server there: with nobody watched,
          // the heartbeat's answer decides.
          if (ids.length) this._polled();
        } catch (err) {
          this._pollFailed(err);
        }
        this._emitChanges(out);
      }
    } finally {
      this._pollRunning = false;
    }
  }

  _polled() {
    if (!this._polling) return;
    this._liveAt = Date.now();
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
