// @presenced/client/react: React bindings for the presenced client.
//
// PresenceProvider hands one PresenceClient to the tree; usePresence(ids)
// watches users for as long as a component shows them. Watches are
// counted per client and id, so that two components showing the same
// user share one subscription, and the user is unsubscribed only when the
// last of them unmounts. Each hook reads the client through
// useSyncExternalStore, so a render never sees a torn cache.

import { createContext, createElement, useCallback, useContext, useEffect, useRef, useSyncExternalStore } from 'react';

const ClientContext = createContext(null);

/**
 * PresenceProvider makes client the one that the hooks below it use. The
 * app creates the client, connects it and closes it; the provider does
 * neither, so that a re-render or a remount never costs a reconnect.
 * @param {{client: import('@presenced/client').PresenceClient, children?: any}} props
 */
export function PresenceProvider({ client, children }) {
  if (!client || typeof client.subscribe !== 'function') {
    throw new TypeError('PresenceProvider: client must be a PresenceClient');
  }
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** usePresenceClient returns the client of the nearest PresenceProvider. */
export function usePresenceClient() {
  const client = useContext(ClientContext);
  if (!client) throw new Error('usePresenceClient, usePresence, useMyStatus and useConnectionState need a <PresenceProvider client={...}> above them');
  return client;
}

// ---- counted watches ----

const noop = () => {};
const registries = new WeakMap(); // client -> Watches

// Watches counts, per user id, the components that watch it. Releases
// wait for a microtask, so that an unmount followed at once by a mount of
// the same ids (React's StrictMode, a list re-keyed) does not unsubscribe
// and subscribe again.
class Watches {
  constructor(client) {
    this.client = client;
    this.counts = new Map();
    this.released = new Set();
    this.flushing = false;
  }

  acquire(ids) {
    const fresh = [];
    for (const id of ids) {
      const n = this.counts.get(id) ?? 0;
      this.counts.set(id, n + 1);
      if (n === 0 && !this.released.delete(id)) fresh.push(id);
    }
    // Errors reach the app through the client's 'error' event and the
    // entries' absence; a hook has no one to throw them to.
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
      if (gone.length && this.client.state !== 'closed') this.client.unsubscribe(gone).catch(noop);
    });
  }

  count(id) {
    return this.counts.get(id) ?? 0;
  }
}

/**
 * watchCount says how many mounted components watch userId through the
 * hooks of client: what the reference counting holds, for tests and
 * debugging.
 * @param {import('@presenced/client').PresenceClient} client
 * @param {number} userId
 */
export function watchCount(client, userId) {
  return registries.get(client)?.count(userId) ?? 0;
}

function watchesOf(client) {
  let w = registries.get(client);
  if (!w) registries.set(client, (w = new Watches(client)));
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

/**
 * usePresence watches users while the component is mounted and returns
 * their cached presences: a Map from user id to Presence, holding the
 * known ones among ids (a user the server does not know, or whose
 * snapshot has not come yet, is absent). It re-renders when any of them
 * changes, turns stale or fresh.
 * @param {number | number[]} ids
 */
export function usePresence(ids) {
  const client = usePresenceClient();
  const list = idList(ids);
  const key = list.join(',');
  const snap = useRef(null);

  const subscribe = useCallback((notify) => {
    const want = new Set(key ? key.split(',').map(Number) : []);
    return client.on('change', (changed) => {
      if (changed.some((id) => want.has(id))) notify();
    });
  }, [client, key]);

  const getSnapshot = () => {
    const entries = list.map((id) => client.get(id));
    const prev = snap.current;
    if (prev && prev.key === key && prev.entries.every((e, i) => e === entries[i])) return prev.map;
    const map = new Map();
    list.forEach((id, i) => { if (entries[i]) map.set(id, entries[i]); });
    snap.current = { key, entries, map };
    return map;
  };

  const map = useSyncExternalStore(subscribe, getSnapshot, getSnapshot);

  useEffect(() => {
    if (!key) return undefined;
    const w = watchesOf(client);
    const mine = key.split(',').map(Number);
    w.acquire(mine);
    return () => w.release(mine);
  }, [client, key]);

  return map;
}

function useClientSnapshot(events, read, same) {
  const client = usePresenceClient();
  const snap = useRef(null);
  const bump = useRef(null);
  const subscribe = useCallback((notify) => {
    bump.current = notify;
    const offs = events.map((e) => client.on(e, notify));
    return () => {
      bump.current = null;
      for (const off of offs) off();
    };
  }, [client]); // eslint-disable-line react-hooks/exhaustive-deps
  const getSnapshot = () => {
    const next = read(client);
    if (snap.current && snap.current.client === client && same(snap.current.value, next)) return snap.current.value;
    snap.current = { client, value: next };
    return next;
  };
  const value = useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
  return { client, value, bump };
}

const STATUS_EVENTS = ['status', 'error', 'state', 'transport'];

function readStatus(client) {
  return { status: client.lastStatus, desired: client.desiredStatus, pending: client.statusPending };
}

function sameStatus(a, b) {
  return a.status === b.status && a.pending === b.pending && JSON.stringify(a.desired) === JSON.stringify(b.desired);
}

/**
 * useMyStatus returns the signed-in user's status: status (the server's
 * last UserStatus, or null), desired (what the app has asked for),
 * pending (the server has yet to confirm it) and setStatus, the client's
 * own, which re-renders at once with the new desired status.
 */
export function useMyStatus() {
  const { client, value, bump } = useClientSnapshot(STATUS_EVENTS, readStatus, sameStatus);
  const setStatus = useCallback((fields) => {
    const p = client.setStatus(fields);
    bump.current?.();
    // Rejections without a new event (a call that timed out, queued) still
    // change nothing that shows; the caller has the promise.
    return p;
  }, [client]); // eslint-disable-line react-hooks/exhaustive-deps
  return { ...value, setStatus };
}

function readConnection(client) {
  return { state: client.state, transport: client.transport };
}

function sameConnection(a, b) {
  return a.state === b.state && a.transport === b.transport;
}

/**
 * useConnectionState returns {state, transport}: whether the client is
 * connected, connecting, paused, in the background, stopped or closed,
 * and over which transport ('websocket', 'polling' or 'none'), for a
 * banner while the app is offline.
 */
export function useConnectionState() {
  return useClientSnapshot(['state', 'transport'], readConnection, sameConnection).value;
}
