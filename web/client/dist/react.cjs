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

// client/src/react.js
var react_exports = {};
__export(react_exports, {
  PresenceProvider: () => PresenceProvider,
  useConnectionState: () => useConnectionState,
  useMyStatus: () => useMyStatus,
  usePresence: () => usePresence,
  usePresenceClient: () => usePresenceClient,
  watchCount: () => watchCount
});
module.exports = __toCommonJS(react_exports);
var import_react = require("react");
var ClientContext = (0, import_react.createContext)(null);
function PresenceProvider({ client, children }) {
  if (!client || typeof client.subscribe !== "function") {
    throw new TypeError("PresenceProvider: client must be a PresenceClient");
  }
  return (0, import_react.createElement)(ClientContext.Provider, { value: client }, children);
}
function usePresenceClient() {
  const client = (0, import_react.useContext)(ClientContext);
  if (!client) throw new Error("usePresenceClient, usePresence, useMyStatus and useConnectionState need a <PresenceProvider client={...}> above them");
  return client;
}
var noop = () => {
};
var registries = /* @__PURE__ */ new WeakMap();
var Watches = class {
  constructor(client) {
    this.client = client;
    this.counts = /* @__PURE__ */ new Map();
    this.released = /* @__PURE__ */ new Set();
    this.flushing = false;
  }
  acquire(ids) {
    const fresh = [];
    for (const id of ids) {
      const n = this.counts.get(id) ?? 0;
      this.counts.set(id, n + 1);
      if (n === 0 && !this.released.delete(id)) fresh.push(id);
    }
    if (fresh.length) this.client.subscribe(fresh).catch(noop);
  }
  release(ids) {
    for (const id of ids) {
      const n = this.counts.get(id) ?? 0;
      if (n <= 1) {
        this.counts.delete(id);
        this.released.add(id);
      } else {
        this.counts.set(id, n - 1);
      }
    }
    if (this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => {
      this.flushing = false;
      const gone = [...this.released].filter((id) => !this.counts.has(id));
      this.released.clear();
      if (gone.length && this.client.state !== "closed") this.client.unsubscribe(gone).catch(noop);
    });
  }
  count(id) {
    return this.counts.get(id) ?? 0;
  }
};
function watchCount(client, userId) {
  return registries.get(client)?.count(userId) ?? 0;
}
function watchesOf(client) {
  let w = registries.get(client);
  if (!w) registries.set(client, w = new Watches(client));
  return w;
}
function idList(ids) {
  const list = Array.isArray(ids) ? ids : [ids];
  const out = [];
  for (const v of list) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new TypeError(`usePresence: user id ${JSON.stringify(v)} is not a positive integer`);
    if (!out.includes(v)) out.push(v);
  }
  return out;
}
function usePresence(ids) {
  const client = usePresenceClient();
  const list = idList(ids);
  const key = list.join(",");
  const snap = (0, import_react.useRef)(null);
  const subscribe = (0, import_react.useCallback)((notify) => {
    const want = new Set(key ? key.split(",").map(Number) : []);
    return client.on("change", (changed) => {
      if (changed.some((id) => want.has(id))) notify();
    });
  }, [client, key]);
  const getSnapshot = () => {
    const entries = list.map((id) => client.get(id));
    const prev = snap.current;
    if (prev && prev.key === key && prev.entries.every((e, i) => e === entries[i])) return prev.map;
    const map2 = /* @__PURE__ */ new Map();
    list.forEach((id, i) => {
      if (entries[i]) map2.set(id, entries[i]);
    });
    snap.current = { key, entries, map: map2 };
    return map2;
  };
  const map = (0, import_react.useSyncExternalStore)(subscribe, getSnapshot, getSnapshot);
  (0, import_react.useEffect)(() => {
    if (!key) return void 0;
    const w = watchesOf(client);
    const mine = key.split(",").map(Number);
    w.acquire(mine);
    return () => w.release(mine);
  }, [client, key]);
  return map;
}
function useClientSnapshot(events, read, same) {
  const client = usePresenceClient();
  const snap = (0, import_react.useRef)(null);
  const bump = (0, import_react.useRef)(null);
  const subscribe = (0, import_react.useCallback)((notify) => {
    bump.current = notify;
    const offs = events.map((e) => client.on(e, notify));
    return () => {
      bump.current = null;
      for (const off of offs) off();
    };
  }, [client]);
  const getSnapshot = () => {
    const next = read(client);
    if (snap.current && snap.current.client === client && same(snap.current.value, next)) return snap.current.value;
    snap.current = { client, value: next };
    return next;
  };
  const value = (0, import_react.useSyncExternalStore)(subscribe, getSnapshot, getSnapshot);
  return { client, value, bump };
}
var STATUS_EVENTS = ["status", "error", "state", "transport"];
function readStatus(client) {
  return { status: client.lastStatus, desired: client.desiredStatus, pending: client.statusPending };
}
function sameStatus(a, b) {
  return a.status === b.status && a.pending === b.pending && JSON.stringify(a.desired) === JSON.stringify(b.desired);
}
function useMyStatus() {
  const { client, value, bump } = useClientSnapshot(STATUS_EVENTS, readStatus, sameStatus);
  const setStatus = (0, import_react.useCallback)((fields) => {
    const p = client.setStatus(fields);
    bump.current?.();
    return p;
  }, [client]);
  return { ...value, setStatus };
}
function readConnection(client) {
  return { state: client.state, transport: client.transport };
}
function sameConnection(a, b) {
  return a.state === b.state && a.transport === b.transport;
}
function useConnectionState() {
  return useClientSnapshot(["state", "transport"], readConnection, sameConnection).value;
}
