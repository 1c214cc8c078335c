// @presenced/client 1.0.0 (MIT). Built from web/client/src by build.mjs; do not edit.
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// client/src/presence.js
var presence_exports = {};
__export(presence_exports, {
  PROTOCOL_VERSION: () => PROTOCOL_VERSION,
  PresenceClient: () => PresenceClient,
  PresenceError: () => PresenceError,
  State: () => State,
  Transport: () => Transport,
  backoffDelay: () => backoffDelay,
  decodeFrame: () => decodeFrame,
  defaults: () => defaults,
  shouldReconnect: () => shouldReconnect,
  tokenExpiry: () => tokenExpiry
});
module.exports = __toCommonJS(presence_exports);
var PROTOCOL_VERSION = 1;
var Transport = Object.freeze({ NONE: "none", WEBSOCKET: "websocket", POLLING: "polling" });
var State = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  CONNECTED: "connected",
  PAUSED: "paused",
  BACKGROUND: "background",
  STOPPED: "stopped",
  CLOSED: "closed"
});
var defaults = Object.freeze({
  backoffInitialMs: 500,
  backoffMaxMs: 3e4,
  backoffFactor: 2,
  connectTimeoutMs: 1e4,
  answerTimeoutMs: 3e3,
  pingIntervalMs: 2e4,
  pongTimeoutMs: 1e4,
  requestTimeoutMs: 1e4,
  pollIntervalMs: 1e4,
  heartbeatIntervalMs: 3e4,
  fallbackAfter: 2,
  maxIdsPerRequest: 100,
  refreshBeforeMs: 6e4,
  statusTimeoutMs: 3e4,
  closeTimeoutMs: 1e3,
  rateLimitBackoffMs: 5e3
});
var PresenceError = class extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: number, refused?: boolean, lost?: boolean, queued?: boolean,
   *   rateLimited?: boolean, retryAfterMs?: number, cause?: unknown}} [info]
   */
  constructor(message, info = {}) {
    super(message, info.cause === void 0 ? void 0 : { cause: info.cause });
    this.name = "PresenceError";
    this.status = info.status;
    this.code = info.code;
    this.refused = info.refused === true;
    this.lost = info.lost === true;
    this.queued = info.queued === true;
    this.rateLimited = info.rateLimited === true;
    Object.defineProperty(this, "retryAfterMs", { value: info.retryAfterMs, enumerable: false });
  }
};
var CLOSE_RATE_LIMITED = 4429;
var CLOSE_TOKEN_EXPIRED = 4002;
var CLOSE_TOKEN_REFUSED = 4401;
function shouldReconnect(code) {
  return code === CLOSE_RATE_LIMITED || !(code >= 4400 && code <= 4499);
}
function decodeFrame(text) {
  const v = JSON.parse(text);
  const list = Array.isArray(v) ? v : [v];
  for (const m of list) {
    if (m === null || typeof m !== "object" || typeof m.type !== "string") {
      throw new PresenceError("frame holds something other than a message object");
    }
  }
  return list;
}
function backoffDelay(attempt, t, random) {
  const cap = Math.min(t.backoffMaxMs, t.backoffInitialMs * Math.pow(t.backoffFactor, Math.min(attempt, 30)));
  return cap / 2 + random() * (cap / 2);
}
function samePresence(a, b) {
  return a.username === b.username && a.is_online === b.is_online && a.is_busy === b.is_busy && a.wait_time === b.wait_time && a.busy_since === b.busy_since;
}
function toPresence(m) {
  return {
    user_id: m.user_id,
    username: m.username ?? "",
    is_online: m.is_online === true,
    is_busy: m.is_busy === true,
    wait_time: m.wait_time ?? null,
    busy_since: m.busy_since ?? null,
    last_seen: m.last_seen ?? null,
    stale: false,
    stale_since: null
  };
}
function toUserIds(ids) {
  const list = Array.isArray(ids) ? ids : [ids];
  const out = [];
  for (const v of list) {
    const id = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
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
function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4))).exp;
    return typeof exp === "number" && exp > 0 ? exp * 1e3 : 0;
  } catch {
    return 0;
  }
}
function isReactNative() {
  return typeof navigator !== "undefined" && navigator.product === "ReactNative";
}
function wsUrlOf(base) {
  return base.replace(/^http(s?):\/\//i, "ws$1://") + "/ws";
}
function withParam(url, name, value) {
  return url + (url.includes("?") ? "&" : "?") + name + "=" + encodeURIComponent(value);
}
var DEVICE_KEY = "presenced.device_id";
var DEVICE_ID = /^[\x21-\x7e]{1,64}$/;
function newDeviceId() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof c?.getRandomValues === "function") {
    c.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
function browserStorage() {
  try {
    const s = globalThis.localStorage;
    if (s && typeof s.getItem === "function" && typeof s.setItem === "function") return s;
  } catch {
  }
  return null;
}
function checkToken(token) {
  if (typeof token !== "string" && typeof token !== "function") {
    throw new TypeError("PresenceClient: token must be a string or a function returning one");
  }
}
function checkNetwork(source) {
  if (typeof source?.addEventListener !== "function") {
    throw new TypeError("PresenceClient: network must have addEventListener(listener) returning an unsubscribe function, as NetInfo does");
  }
}
function isThenable(v) {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof v.then === "function";
}
var STATUS_FIELDS = ["is_online", "is_busy", "wait_time", "last_seen_visible"];
var MAX_WAIT_TIME = 7 * 24 * 60;
function checkStatus(fields) {
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
    throw new TypeError("setStatus takes an object such as {is_busy: true}");
  }
  const out = {};
  for (const k of Object.keys(fields)) {
    if (!STATUS_FIELDS.includes(k)) throw new TypeError(`setStatus: unknown field ${k}; use is_online, is_busy, wait_time or last_seen_visible`);
    const v = fields[k];
    if (v === void 0) continue;
    if (k === "wait_time") {
      if (v !== null && !(Number.isInteger(v) && v >= 0 && v <= MAX_WAIT_TIME)) {
        throw new TypeError(`setStatus: wait_time must be a whole number of minutes from 0 to ${MAX_WAIT_TIME}, or null; got ${JSON.stringify(v)}`);
      }
    } else if (typeof v !== "boolean") {
      throw new TypeError(`setStatus: ${k} must be true or false; got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  if (Object.keys(out).length === 0) throw new TypeError("setStatus: give at least one of is_online, is_busy, wait_time, last_seen_visible");
  return out;
}
function mergeStatus(into, fields) {
  Object.assign(into, fields);
  if (into.is_busy === false && "wait_time" in into) into.wait_time = null;
  return into;
}
var noop = () => {
};
var OPEN = 1;
var PresenceClient = class {
  /** @param {import('./presence').PresenceClientOptions} options */
  constructor(options) {
    const o = options ?? {};
    if (typeof o.url !== "string" || !/^https?:\/\//i.test(o.url)) {
      throw new TypeError(`PresenceClient: url must be the server's http(s) address, e.g. "https://presence.example.com"`);
    }
    checkToken(o.token);
    this.qa = o.url.replace(/\/+$/, "");
    this.ra = o.wsUrl ?? wsUrlOf(this.qa);
    this.r = o.token;
    this.K = o.WebSocket ?? globalThis.WebSocket;
    const f = o.fetch ?? globalThis.fetch;
    this.v = f ? (url, init) => f.call(void 0, url, init) : void 0;
    if (!this.K && !this.v) {
      throw new TypeError("PresenceClient: this platform has neither WebSocket nor fetch; pass one in the options");
    }
    this.ba = o.tokenIn ?? (isReactNative() ? "header" : "query");
    if (this.ba !== "header" && this.ba !== "query") {
      throw new TypeError('PresenceClient: tokenIn must be "header" or "query"');
    }
    this.b = { ...defaults };
    for (const k of Object.keys(defaults)) {
      if (o[k] !== void 0) {
        if (typeof o[k] !== "number" || !(o[k] >= 0)) throw new TypeError(`PresenceClient: ${k} must be a number >= 0`);
        this.b[k] = o[k];
      }
    }
    this.L = o.random ?? Math.random;
    if (o.network !== void 0) checkNetwork(o.network);
    this.o = new Map(o.network ? [[o.network, null]] : []);
    this.a = State.IDLE;
    this.w = Transport.NONE;
    this.ca = null;
    this.M = /* @__PURE__ */ new Map();
    this.k = /* @__PURE__ */ new Map();
    this.j = /* @__PURE__ */ new Set();
    this.s = /* @__PURE__ */ new Set();
    this.x = /* @__PURE__ */ new Map();
    this.N = 1;
    this.l = /* @__PURE__ */ new Map();
    this.O = 0;
    this.C = null;
    this.d = null;
    this.m = false;
    this.D = 0;
    this.y = 0;
    this.P = false;
    this.Q = false;
    this.R = false;
    this.sa = false;
    this.S = false;
    this.da = false;
    this.E = null;
    this.f = false;
    this.ea = false;
    this.fa = false;
    this.ga = 0;
    this.z = false;
    this.g = [];
    this.F = 0;
    this.ta = {};
    this.p = 0;
    this.t = null;
    this.A = false;
    this.ha = 0;
    this.B = null;
    this.Oa(o);
  }
  /** The transport delivering presence now: 'websocket', 'polling' or 'none'. */
  get transport() {
    return this.w;
  }
  /** 'idle', 'connecting', 'connected', 'paused', 'background', 'stopped' or 'closed'. */
  get state() {
    return this.a;
  }
  /** Why the client stopped (a PresenceError), when state is 'stopped'. */
  get lastError() {
    return this.ca;
  }
  /** The ids of the watched users. */
  get watching() {
    return [...this.j];
  }
  /** A copy of the presence cache: user id -> Presence, for known users. */
  get presences() {
    return new Map(this.k);
  }
  /** This device's id, sent on every request; null until an asynchronous store has answered. */
  get deviceId() {
    return this.T;
  }
  /** The status the app has asked for: the merge of every field it has set (a copy). */
  get desiredStatus() {
    return this.G();
  }
  /** True while the server has not confirmed the status the app asked for. */
  get statusPending() {
    return this.F > this.p || this.t !== null || this.A && Object.keys(this.G()).length > 0;
  }
  /** The signed-in user's UserStatus as the server last answered it, or null. */
  get lastStatus() {
    return this.B;
  }
  /**
   * get returns the cached presence of a watched user, or undefined when
   * the server does not know the user (or no snapshot has come yet).
   * @param {number} userId
   */
  get(userId) {
    return this.k.get(userId);
  }
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
    let set = this.M.get(event);
    if (!set) this.M.set(event, set = /* @__PURE__ */ new Set());
    set.add(fn);
    return () => set.delete(fn);
  }
  c(event, ...args) {
    const set = this.M.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
  /** connect starts the client (again, after pause, background or stop). */
  connect() {
    if (this.a === State.CLOSED) throw new PresenceError("the client is closed; create a new one");
    if (this.a === State.CONNECTING || this.a === State.CONNECTED) return;
    this.Pa();
    this.ca = null;
    this.D = 0;
    this.y = 0;
    this.P = false;
    this.ga++;
    this.z = false;
    this.e("keepalive");
    this.e("statusRetry");
    this.q(State.CONNECTING);
    if (this.R && this.ua()) this.ia();
    this.U();
  }
  /** resume is connect under the name an AppState handler looks for. */
  resume() {
    this.connect();
  }
  /** foreground is connect, the pair of background(). */
  foreground() {
    this.connect();
  }
  /**
   * pause closes the socket and stops polling, keeping the watched users
   * and the (now stale) cache; resume() reconnects and refreshes it. The
   * user goes offline after the server's grace.
   */
  pause() {
    if (this.a === State.CLOSED || this.a === State.IDLE) return;
    this.V("paused");
    this.q(State.PAUSED);
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
    const s = this.a;
    if (s === State.CLOSED || s === State.IDLE || s === State.STOPPED || s === State.BACKGROUND) return;
    const epoch = ++this.ga;
    this.z = false;
    const closed = this.V("background");
    this.q(State.BACKGROUND);
    closed.then(() => {
      if (this.a !== State.BACKGROUND || this.ga !== epoch) return;
      this.z = true;
      this.ja();
      this.u();
    });
  }
  /** close stops the client for good and rejects what still waits. */
  close() {
    if (this.a === State.CLOSED) return;
    this.V("closed");
    this.q(State.CLOSED);
    this.C?.();
    this.C = null;
    const err = new PresenceError("the client was closed");
    this.va(err);
    this.wa(err);
    this.g = [];
  }
  /**
   * setToken replaces the token (or token function) used from the next
   * connection on; a client stopped by a refused token connects again.
   * @param {string | (() => string | Promise<string>)} token
   */
  setToken(token) {
    checkToken(token);
    this.r = token;
    if (this.a === State.STOPPED) this.connect();
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
    if (this.a === State.CLOSED) throw new PresenceError("the client is closed");
    if (!this.o.has(source)) {
      this.o.set(source, this.C ? this.xa(source) : null);
    }
    return () => {
      const off = this.o.get(source);
      this.o.delete(source);
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
    if (this.a === State.CLOSED) return Promise.reject(new PresenceError("the client is closed"));
    if (ids.length === 0) return Promise.resolve([]);
    for (const id of ids) this.j.add(id);
    const done = new Promise((resolve, reject) => {
      this.s.add({ ids, remaining: new Set(ids), resolve, reject });
    });
    if (this.W()) {
      this.ka(ids);
    } else if (this.f) {
      this.X();
    }
    return done;
  }
  /**
   * unsubscribe stops watching users and drops them from the cache.
   * @param {number | number[]} userIds
   * @returns {Promise<void>}
   */
  unsubscribe(userIds) {
    const ids = toUserIds(userIds).filter((id) => this.j.has(id));
    if (ids.length === 0) return Promise.resolve();
    const changed = [];
    for (const id of ids) {
      this.j.delete(id);
      if (this.k.delete(id)) changed.push(id);
    }
    this.ya(ids);
    if (changed.length) this.c("change", changed);
    if (!this.W()) return Promise.resolve();
    return Promise.all(chunks(ids, this.b.maxIdsPerRequest).map((c) => this.Y({ type: "unsubscribe", user_ids: c }).catch(noop))).then(noop);
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
    if (this.a === State.CLOSED) return Promise.reject(new PresenceError("the client is closed"));
    return new Promise((resolve, reject) => {
      const call = { version: ++this.F, fields: update, resolve, reject, settled: false, timer: null };
      const ms = this.b.statusTimeoutMs;
      if (ms > 0 && ms < 2 ** 31) call.timer = setTimeout(() => this.Qa(call), ms);
      this.g.push(call);
      this.ja();
      this.u();
    });
  }
  // ---- state ----
  q(state) {
    if (state === this.a) return;
    const prev = this.a;
    this.a = state;
    this.c("state", state, prev);
  }
  Z(t) {
    if (t === this.w) return;
    const prev = this.w;
    this.w = t;
    if (t === Transport.NONE) this.Ra();
    this.c("transport", t, prev);
    if (t === Transport.POLLING) this.za();
  }
  n() {
    return this.a === State.CONNECTING || this.a === State.CONNECTED;
  }
  // The client has lost every transport but goes on trying.
  Aa() {
    this.Z(Transport.NONE);
    if (this.n()) this.q(State.CONNECTING);
  }
  // A server refusal that retrying will not fix: stop until the app acts.
  Ba(err) {
    if (!this.n() && this.a !== State.BACKGROUND) return;
    this.V("stopped");
    this.ca = err;
    this.q(State.STOPPED);
    this.c("error", err);
    this.va(err);
    this.wa(err);
  }
  // _teardown stops every transport and timer. It resolves when the
  // socket's close has completed (its close event), or after
  // closeTimeoutMs, whichever comes first.
  V(why) {
    for (const id of [...this.l.keys()]) this.e(id);
    this.Ca();
    const ws = this.d;
    let closed = Promise.resolve();
    if (ws) {
      this.Da();
      closed = new Promise((resolve) => {
        const timer = setTimeout(resolve, this.b.closeTimeoutMs);
        ws.onclose = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      try {
        ws.close(1e3, why);
      } catch {
      }
    }
    this.Z(Transport.NONE);
    return closed;
  }
  i(name, ms, fn, repeat = false) {
    this.e(name);
    const h = repeat ? setInterval(fn, ms) : setTimeout(() => {
      this.l.delete(name);
      fn();
    }, ms);
    this.l.set(name, { h, repeat });
  }
  e(name) {
    const t = this.l.get(name);
    if (!t) return;
    if (t.repeat) clearInterval(t.h);
    else clearTimeout(t.h);
    this.l.delete(name);
  }
  va(err) {
    for (const w of this.s) w.reject(err);
    this.s.clear();
  }
  // ---- the device id ----
  Oa(o) {
    this.T = null;
    if (o.deviceId !== void 0) {
      if (typeof o.deviceId !== "string" || !DEVICE_ID.test(o.deviceId)) {
        throw new TypeError("PresenceClient: deviceId must be 1 to 64 visible ASCII characters, without spaces");
      }
      this.T = o.deviceId;
      this._ = Promise.resolve(o.deviceId);
      return;
    }
    if (o.storage !== void 0 && (typeof o.storage?.getItem !== "function" || typeof o.storage?.setItem !== "function")) {
      throw new TypeError("PresenceClient: storage must have getItem and setItem, as localStorage and AsyncStorage do");
    }
    const store = o.storage ?? browserStorage();
    let got = null;
    if (store) {
      try {
        got = store.getItem(DEVICE_KEY);
      } catch (err) {
        this.$(err);
        got = null;
      }
    }
    if (isThenable(got)) {
      this._ = Promise.resolve(got).then(
        (v) => this.la(store, v),
        (err) => {
          this.$(err);
          return this.la(null, null);
        }
      );
    } else {
      this._ = Promise.resolve(this.la(store, got));
    }
  }
  // _adoptDevice takes the stored id, or makes one and stores it.
  la(store, value) {
    if (typeof value === "string" && DEVICE_ID.test(value)) {
      this.T = value;
      return value;
    }
    const id = newDeviceId();
    this.T = id;
    if (store) {
      try {
        const r = store.setItem(DEVICE_KEY, id);
        if (isThenable(r)) Promise.resolve(r).catch((err) => this.$(err));
      } catch (err) {
        this.$(err);
      }
    }
    return id;
  }
  // A store that fails leaves an id kept in memory for the client's life.
  $(err) {
    const e = new PresenceError("cannot keep the device id in the storage: " + (err?.message ?? err), { cause: err });
    queueMicrotask(() => this.c("error", e));
  }
  // ---- network and visibility ----
  // _attachEnvironment listens for news that the network is back: the
  // browser's online event, a hidden tab shown again, or the app's
  // network-state source (NetInfo's shape).
  Pa() {
    if (this.C) return;
    const offs = [];
    const w = globalThis.window;
    if (w && typeof w.addEventListener === "function") {
      const online = () => this.ma();
      w.addEventListener("online", online);
      offs.push(() => w.removeEventListener("online", online));
    }
    const d = globalThis.document;
    if (d && typeof d.addEventListener === "function") {
      const shown = () => {
        if (d.visibilityState === "visible") this.ma();
      };
      d.addEventListener("visibilitychange", shown);
      offs.push(() => d.removeEventListener("visibilitychange", shown));
    }
    for (const [source, off] of this.o) {
      if (!off) this.o.set(source, this.xa(source));
    }
    this.C = () => {
      for (const off of offs) off();
      for (const [source, off] of this.o) {
        off?.();
        this.o.set(source, null);
      }
    };
  }
  // _listenNetwork listens to one network-state source and returns the
  // function that stops it.
  xa(source) {
    let up = null;
    const unsubscribe = source.addEventListener((s) => {
      const now = s?.isConnected === true && s?.isInternetReachable !== false;
      const was = up;
      up = now;
      if (now !== was) this.ma();
    });
    if (typeof unsubscribe === "function") return unsubscribe;
    if (typeof unsubscribe?.remove === "function") return () => unsubscribe.remove();
    return noop;
  }
  // _networkHint: the network may have changed. A client waiting to
  // reconnect tries at once (the wait was for a network that is back);
  // an open socket is pinged, since a network change often kills it
  // silently. A 4429 wait is kept: the network did not cause it.
  ma() {
    if (this.a === State.BACKGROUND) {
      if (this.z && this.l.has("statusRetry")) {
        this.e("statusRetry");
        this.u();
      }
      return;
    }
    if (!this.n()) return;
    if (this.f) this.X();
    if (this.d) {
      if (this.m) this.Ea();
      else this.Q = true;
      return;
    }
    if (this.P || !this.l.has("reconnect")) return;
    this.e("reconnect");
    this.D = 0;
    this.U();
  }
  // ---- freshness ----
  // _markStale: no transport delivers presence now, so every entry is the
  // last known one, as of the last time the server was heard.
  Ra() {
    const since = new Date(this.O || Date.now()).toISOString();
    const ids = [];
    for (const [id, p] of this.k) {
      if (p.stale) continue;
      this.k.set(id, { ...p, stale: true, stale_since: since });
      ids.push(id);
    }
    if (ids.length) {
      this.c("freshness", ids, true);
      this.c("change", ids);
    }
  }
  // ---- the socket ----
  W() {
    return this.d !== null && this.d.readyState === OPEN;
  }
  async U() {
    if (!this.n() || this.d) return;
    if (!this.K) {
      this.Sa();
      this.ia();
      return;
    }
    let token;
    let device;
    try {
      const force = this.S;
      this.S = false;
      token = force ? await this.na() : await this.aa();
      device = await this._;
    } catch (err) {
      this.c("error", new PresenceError("token function failed", { cause: err }));
      this.oa();
      return;
    }
    if (!this.n() || this.d) return;
    let ws;
    try {
      ws = this.ba === "header" ? new this.K(this.ra, [], { headers: { Authorization: "Bearer " + token, "X-Device-ID": device } }) : new this.K(withParam(withParam(this.ra, "access_token", token), "device_id", device));
    } catch (err) {
      this.c("error", new PresenceError("cannot create a WebSocket: " + err.message, { cause: err }));
      this.oa();
      return;
    }
    this.d = ws;
    this.m = false;
    this.Ta = tokenExpiry(token);
    this.i("connect", this.b.connectTimeoutMs, () => this.H(ws, "no answer from the server in time"));
    ws.onopen = () => {
      if (this.d !== ws) return;
      this.i("answer", this.b.answerTimeoutMs, () => {
        this.R = true;
        this.H(ws, `the socket opened but no answer came within ${this.b.answerTimeoutMs} ms`);
      });
      const ids = [...this.j];
      if (ids.length) this.ka(ids);
      else this.pa({ type: "ping", id: this.N++ });
    };
    ws.onmessage = (ev) => {
      if (this.d === ws) this.Ua(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.d === ws) this.Fa(ev.code, ev.reason);
    };
    ws.onerror = () => {
      if (this.d === ws && ws.readyState !== OPEN) this.H(ws, "the connection failed");
    };
  }
  // _dropSocket gives up on a socket the client no longer trusts.
  H(ws, reason) {
    if (this.d !== ws) return;
    this.Fa(1006, reason);
    try {
      ws.close(1e3, reason.slice(0, 100));
    } catch {
    }
  }
  // _forgetSocket detaches the current socket and fails what waits on it.
  Da() {
    const ws = this.d;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = noop;
    this.d = null;
    this.m = false;
    this.e("connect");
    this.e("answer");
    this.e("ping");
    this.e("pong");
    this.e("refresh");
    const lost = new PresenceError("the connection closed before the answer", { lost: true });
    for (const r of this.x.values()) {
      clearTimeout(r.timer);
      r.reject(lost);
    }
    this.x.clear();
  }
  Fa(code, reason) {
    const heard = this.m;
    this.Da();
    if (!this.n()) return;
    const why = `the server closed the connection with ${code}${reason ? ": " + reason : ""}`;
    if (code === CLOSE_TOKEN_REFUSED && typeof this.r === "function" && !this.da) {
      this.da = true;
      this.S = true;
      this.i("reconnect", 0, () => this.U());
      return;
    }
    if (!shouldReconnect(code)) {
      this.Ba(new PresenceError(why, { code }));
      return;
    }
    if (code === CLOSE_TOKEN_EXPIRED) this.S = true;
    if (this.w === Transport.WEBSOCKET) this.Aa();
    if (heard) {
      this.y = 0;
    } else {
      this.y++;
    }
    let hold = 0;
    if (code === CLOSE_RATE_LIMITED) {
      hold = this.b.rateLimitBackoffMs * (1 + this.L());
      this.c("error", new PresenceError(`${why}; reconnecting in ${Math.round(hold)} ms`, { code, rateLimited: true }));
    }
    this.oa(false, hold);
  }
  oa(count = true, hold = 0) {
    if (!this.n()) return;
    if (count) this.y++;
    if ((this.y >= this.b.fallbackAfter || this.R) && this.ua()) this.ia();
    let delay = Math.max(backoffDelay(this.D++, this.b, this.L), hold);
    if (this.Q && hold === 0) {
      this.D = 0;
      delay = 0;
    }
    this.Q = false;
    this.P = hold > 0;
    this.i("reconnect", delay, () => {
      this.P = false;
      this.U();
    });
  }
  // _socketReady: the server answered on a fresh socket, so it is the
  // transport from now on.
  Va() {
    this.m = true;
    this.Q = false;
    this.R = false;
    this.da = false;
    this.e("connect");
    this.e("answer");
    this.D = 0;
    this.y = 0;
    this.Ca();
    this.Z(Transport.WEBSOCKET);
    this.q(State.CONNECTED);
    this.i("ping", this.b.pingIntervalMs, () => this.Ea(), true);
    this.Ga(this.Ta);
    this.za();
  }
  // _scheduleRefresh plans to hand the socket a newer token before the one
  // it holds expires (the server closes it with 4002 at exp). Only a token
  // function can give a newer token.
  Ga(expMs) {
    this.e("refresh");
    if (typeof this.r !== "function" || !expMs) return;
    const left = expMs - Date.now();
    const ahead = Math.min(this.b.refreshBeforeMs, left / 2);
    this.i("refresh", Math.max(0, left - ahead), () => this.Wa(expMs));
  }
  async Wa(oldExp) {
    if (!this.m) return;
    const ws = this.d;
    let token;
    try {
      token = await this.aa();
      if (!(tokenExpiry(token) > oldExp) && this.d === ws) token = await this.na();
    } catch (err) {
      this.c("error", new PresenceError("token function failed", { cause: err }));
      return;
    }
    const exp = tokenExpiry(token);
    if (this.d !== ws || !(exp > oldExp)) return;
    try {
      const r = await this.Y({ type: "refresh", token });
      this.Ga(Date.parse(r.expires_at) || exp);
    } catch (err) {
      if (!err.lost) this.c("error", err);
    }
  }
  // _ping asks for a pong: a socket whose peer vanished without a close
  // (a phone that lost its network, a NAT that forgot the flow) otherwise
  // looks open for minutes. Any frame counts as an answer.
  Ea() {
    if (!this.W()) return;
    this.pa({ type: "ping", id: this.N++ });
    if (!this.l.has("pong")) {
      const ws = this.d;
      this.i("pong", this.b.pongTimeoutMs, () => this.H(ws, "no pong within the deadline"));
    }
  }
  pa(msg) {
    try {
      this.d.send(JSON.stringify(msg));
    } catch (err) {
      this.c("error", new PresenceError("send failed: " + err.message, { cause: err }));
    }
  }
  // _request sends a message with an id and resolves with its answer. With
  // extra.dropOnTimeout, no answer in time means the socket is broken: it
  // is dropped (and replaced) and the request fails as lost.
  Y(msg, extra) {
    const id = this.N++;
    const ws = this.d;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.x.delete(id);
        const what = `no answer to ${msg.type} within ${this.b.requestTimeoutMs} ms`;
        if (extra?.dropOnTimeout) {
          this.H(ws, what);
          reject(new PresenceError(what, { lost: true }));
        } else {
          reject(new PresenceError(what));
        }
      }, this.b.requestTimeoutMs);
      this.x.set(id, { ...extra, resolve, reject, timer });
      this.pa({ ...msg, id });
    });
  }
  ka(ids) {
    const ws = this.d;
    for (const c of chunks(ids, this.b.maxIdsPerRequest)) {
      this.Y({ type: "subscribe", user_ids: c }, { ids: c }).catch((err) => {
        if (!err.refused) return;
        if (err.rateLimited) {
          const wait = this.b.rateLimitBackoffMs * (0.2 + 0.2 * this.L());
          this.i("resubscribe:" + this.N++, wait, () => {
            const still = c.filter((id) => this.j.has(id));
            if (this.d === ws && this.m && still.length) this.ka(still);
          });
          return;
        }
        for (const id of c) this.j.delete(id);
        for (const w of this.s) {
          if (c.some((id) => w.remaining.has(id))) {
            this.s.delete(w);
            w.reject(err);
          }
        }
      });
    }
  }
  Ua(data) {
    if (typeof data !== "string") {
      this.c("error", new PresenceError("the server sent a binary frame"));
      return;
    }
    let msgs;
    try {
      msgs = decodeFrame(data);
    } catch (err) {
      this.c("error", new PresenceError("bad frame from the server: " + err.message, { cause: err }));
      return;
    }
    this.O = Date.now();
    this.e("pong");
    if (!this.m) this.Va();
    const out = { changed: [], fresh: [] };
    for (const m of msgs) this.Xa(m, out);
    this.Ha(out);
  }
  Ha(out) {
    if (out.fresh.length) this.c("freshness", out.fresh, false);
    if (out.changed.length) this.c("change", out.changed);
  }
  Xa(m, out) {
    const r = m.id !== void 0 ? this.x.get(m.id) : void 0;
    if (r) {
      this.x.delete(m.id);
      clearTimeout(r.timer);
    }
    switch (m.type) {
      case "presence":
        this.Ia(m, out);
        break;
      case "subscribed":
        if (r) {
          this.Ja(r.ids, m.presences ?? [], out);
          r.resolve(m);
        }
        break;
      case "error": {
        const detail = typeof m.detail === "string" ? m.detail : "error from the server";
        const err = new PresenceError(detail, { refused: true, rateLimited: /^rate limit\b/i.test(detail) });
        if (r) r.reject(err);
        else this.c("error", err);
        break;
      }
      case "unsubscribed":
        if (r) r.resolve(m);
        else this.Ya(m.user_ids, out);
        break;
      default:
        if (r) r.resolve(m);
    }
  }
  // _withdrawn drops users whose subscription the server ended by itself
  // (the watch policy withdrew them), so that the app shows nothing it no
  // longer hears about, and tells the app.
  Ya(userIds, out) {
    if (!Array.isArray(userIds)) return;
    const ids = userIds.filter((id) => this.j.delete(id));
    if (!ids.length) return;
    for (const id of ids) if (this.k.delete(id)) out.changed.push(id);
    this.c("withdrawn", ids);
  }
  Ia(m, out) {
    if (!this.j.has(m.user_id)) return;
    const p = toPresence(m);
    const prev = this.k.get(p.user_id);
    this.k.set(p.user_id, p);
    if (!prev || !samePresence(prev, p)) {
      out.changed.push(p.user_id);
      if (prev?.stale) out.fresh.push(p.user_id);
      this.c("presence", p, prev);
    } else if (prev.stale) {
      out.changed.push(p.user_id);
      out.fresh.push(p.user_id);
    }
  }
  // _applySnapshot replaces the cache entries of ids with presences (the
  // known ones among them) and wakes the subscribe() calls it satisfies.
  Ja(ids, presences, out) {
    const known = /* @__PURE__ */ new Set();
    for (const p of presences) {
      known.add(p.user_id);
      this.Ia(p, out);
    }
    for (const id of ids) {
      if (!known.has(id) && this.k.delete(id)) out.changed.push(id);
    }
    this.ya(ids);
  }
  ya(ids) {
    for (const w of this.s) {
      for (const id of ids) w.remaining.delete(id);
      if (w.remaining.size === 0) {
        this.s.delete(w);
        w.resolve(w.ids.map((id) => this.k.get(id)).filter(Boolean));
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
  G() {
    const d = { ...this.ta };
    for (const c of this.g) {
      if (c.version > this.p) mergeStatus(d, c.fields);
    }
    return d;
  }
  // _busy: the device must stay alive in the background only for a busy user.
  Za() {
    const d = this.G();
    if (d.is_busy !== void 0) return d.is_busy;
    return this.B?.is_busy === true;
  }
  za() {
    if (Object.keys(this.G()).length) this.A = true;
    this.ha = 0;
    this.e("statusRetry");
    this.u();
  }
  // _statusRoute says which transport may carry the status now, if any.
  _a() {
    if (this.a === State.BACKGROUND) return this.z && this.v ? "rest" : null;
    if (!this.n()) return null;
    if (this.m && this.W()) return "websocket";
    if (this.f && this.w === Transport.POLLING) return "rest";
    return null;
  }
  u() {
    if (this.t || this.l.has("statusRetry")) return;
    if (this.F <= this.p && !this.A) return;
    const body = this.G();
    if (Object.keys(body).length === 0) {
      this.A = false;
      return;
    }
    const via = this._a();
    if (!via) return;
    this.A = false;
    const inflight = { version: this.F, body, via };
    this.t = inflight;
    const sent = via === "websocket" ? this.Y({ type: "set_status", ...body }, { dropOnTimeout: true }).then((m) => m.status) : this.I("PUT", "/users/me/status", body);
    sent.then((status) => this.$a(inflight, status), (err) => this.ab(inflight, err));
  }
  $a(inflight, status) {
    if (this.t !== inflight) return;
    this.t = null;
    if (this.a === State.CLOSED) return;
    this.ha = 0;
    this.ta = inflight.body;
    this.p = inflight.version;
    if (status && typeof status === "object") this.B = status;
    const final = inflight.version === this.F;
    const keep = [];
    for (const c of this.g) {
      if (c.version > inflight.version) {
        keep.push(c);
      } else if (!c.settled) {
        if (final) this.J(c, null, status);
        else keep.push(c);
      }
    }
    this.g = keep;
    this.c("status", status);
    this.ja();
    this.u();
  }
  ab(inflight, err) {
    if (this.t !== inflight) return;
    this.t = null;
    if (this.a === State.CLOSED || this.a === State.STOPPED) return;
    const refused = err.status !== void 0 ? err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429 : err.refused && !err.rateLimited;
    if (refused) {
      const keep = [];
      for (const c of this.g) {
        if (c.version > inflight.version) keep.push(c);
        else if (!c.settled) this.J(c, c.version > this.p ? err : null, this.B);
      }
      this.g = keep;
      this.c("error", err);
      this.u();
      return;
    }
    this.A = true;
    if (inflight.via === "websocket" && err.lost) return;
    const wait = Math.max(backoffDelay(this.ha++, this.b, this.L), err.retryAfterMs ?? 0);
    this.i("statusRetry", wait, () => this.u());
  }
  Qa(call) {
    if (call.settled) return;
    if (call.version <= this.p) {
      this.J(call, null, this.B);
      this.g = this.g.filter((c) => c !== call);
      return;
    }
    this.J(call, new PresenceError(
      `the status was not confirmed within ${this.b.statusTimeoutMs} ms; the client keeps it and sends it when it can`,
      { queued: true }
    ));
  }
  J(call, err, status) {
    if (call.settled) return;
    call.settled = true;
    clearTimeout(call.timer);
    if (err) call.reject(err);
    else call.resolve(status);
  }
  // _rejectCalls fails the calls whose fields the server has not
  // confirmed; those it has (superseded, waiting for the final status)
  // settle with the status it holds.
  wa(err) {
    for (const c of this.g) {
      this.J(c, c.version > this.p ? err : null, this.B);
    }
    this.g = this.g.filter((c) => c.version > this.p);
  }
  // _keepAlive runs REST heartbeats in the background while the user is
  // busy, and stops them otherwise.
  ja() {
    if (this.a !== State.BACKGROUND || !this.z) return;
    if (!this.Za() || !this.v) {
      this.e("keepalive");
      return;
    }
    if (this.l.has("keepalive")) return;
    this.i("keepalive", this.b.heartbeatIntervalMs, () => this.Ka(), true);
    this.Ka();
  }
  async Ka() {
    try {
      await this.I("POST", "/users/me/heartbeat");
    } catch (err) {
      if (this.a === State.BACKGROUND) this.c("error", err);
    }
  }
  // ---- REST ----
  // _resolveToken asks the token function (if any) for a token; with
  // forceRefresh, for a new one rather than one it cached.
  async aa(forceRefresh = false) {
    const t = typeof this.r === "function" ? await this.r({ forceRefresh }) : this.r;
    if (typeof t !== "string" || t === "") throw new PresenceError("the token function returned no token");
    return t;
  }
  // _freshToken is _resolveToken(true), shared by the requests that learn
  // at the same time that the token has expired.
  na() {
    if (!this.E) {
      const p = this.aa(true);
      this.E = p;
      const clear = () => {
        if (this.E === p) this.E = null;
      };
      p.then(clear, clear);
    }
    return this.E;
  }
  ua() {
    return this.v !== void 0 && this.b.fallbackAfter !== Infinity;
  }
  // _warnNoWebSocket says once why the client polls: a platform without
  // WebSocket (Node before 22 without the ws package).
  Sa() {
    if (this.sa) return;
    this.sa = true;
    const err = new PresenceError("no WebSocket here, so the client polls; in Node, pass the ws package as the WebSocket option");
    if (this.M.get("error")?.size) this.c("error", err);
    else if (typeof console !== "undefined") console.warn("presenced: " + err.message);
  }
  // _rest makes one REST request. A 401 with a token function is tried
  // once more with a token asked for with forceRefresh (a cached one may
  // have expired); a second 401 stops the client.
  async I(method, path, body, forced = false) {
    if (!this.v) throw new PresenceError("no fetch on this platform; pass one in the options");
    const token = forced ? await this.na() : await this.aa();
    const device = await this._;
    const ctl = typeof AbortController === "function" ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), this.b.requestTimeoutMs) : void 0;
    let res;
    let text;
    try {
      res = await this.v(this.qa + path, {
        method,
        headers: {
          Authorization: "Bearer " + token,
          "X-Device-ID": device,
          ...body ? { "Content-Type": "application/json" } : {}
        },
        body: body ? JSON.stringify(body) : void 0,
        signal: ctl?.signal
      });
      text = await res.text();
    } catch (err) {
      throw new PresenceError(`${method} ${path} failed: ${err.message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    let data;
    try {
      data = text ? JSON.parse(text) : void 0;
    } catch {
      data = void 0;
    }
    if (!res.ok) {
      const refusedToken = res.status === 401;
      const retryAfter = Number(res.headers?.get?.("Retry-After"));
      const err = new PresenceError(`${method} ${path}: ${res.status} ${data?.detail ?? text.slice(0, 200)}`, {
        status: res.status,
        code: refusedToken ? 4401 : void 0,
        retryAfterMs: retryAfter > 0 ? retryAfter * 1e3 : void 0
      });
      if (refusedToken && !forced && typeof this.r === "function") return this.I(method, path, body, true);
      if (refusedToken) this.Ba(err);
      throw err;
    }
    return data;
  }
  // ---- polling ----
  ia() {
    if (this.f || !this.n()) return;
    this.f = true;
    this.i("poll", this.b.pollIntervalMs, () => this.X(), true);
    this.i("heartbeat", this.b.heartbeatIntervalMs, () => this.La(), true);
    this.La().then(() => this.X());
  }
  Ca() {
    if (!this.f) return;
    this.f = false;
    this.e("poll");
    this.e("heartbeat");
  }
  // _heartbeat keeps the device alive without a socket: the server counts
  // each heartbeat for its TTL (90 s by default), three times the interval.
  async La() {
    if (!this.f) return;
    try {
      await this.I("POST", "/users/me/heartbeat");
      this.Ma();
    } catch (err) {
      this.Na(err);
    }
  }
  // _pollNow fetches the watched users' presence; calls that come while a
  // poll runs make one more poll afterwards, so results never cross.
  async X() {
    this.fa = true;
    if (this.ea) return;
    this.ea = true;
    try {
      while (this.fa && this.f) {
        this.fa = false;
        const ids = [...this.j];
        const out = { changed: [], fresh: [] };
        try {
          for (const c of chunks(ids, this.b.maxIdsPerRequest)) {
            const list = await this.I("GET", "/users/presence?user_ids=" + c.join(","));
            if (!this.f) break;
            this.O = Date.now();
            this.Ja(c.filter((id) => this.j.has(id)), list, out);
          }
          if (ids.length) this.Ma();
        } catch (err) {
          this.Na(err);
        }
        this.Ha(out);
      }
    } finally {
      this.ea = false;
    }
  }
  Ma() {
    if (!this.f) return;
    this.O = Date.now();
    this.Z(Transport.POLLING);
    this.q(State.CONNECTED);
  }
  Na(err) {
    if (!this.f) return;
    this.c("error", err);
    if (err.status === void 0 || err.status >= 500) this.Aa();
  }
};
