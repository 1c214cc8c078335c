// The client's liveness and freshness, against a real presenced: the device
// id on every request, stale entries while no transport works, network
// news that cuts the backoff wait short, 4429 as "back off, then
// reconnect", a phone app in the background during a call, and a polling
// client that watches nobody.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { PresenceClient, State, Transport } from '@presenced/client';
import { devToken, nextEvent, startProxy, startServer, waitFor } from './helpers.mjs';

const it = (name, fn, timeout = 30000) => test(name, { timeout }, fn);

const fast = { WebSocket, backoffInitialMs: 50, backoffMaxMs: 400, connectTimeoutMs: 3000, requestTimeoutMs: 5000 };
const DEVICE_KEY = 'presenced.device_id';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// memoryStore is a store as an app would pass one: localStorage's shape,
// or AsyncStorage's when async (each answer comes after a turn of timers).
function memoryStore({ async = false } = {}) {
  const m = new Map();
  const later = (v) => new Promise((resolve) => setTimeout(() => resolve(v), 20));
  return {
    map: m,
    getItem: (k) => (async ? later(m.get(k) ?? null) : (m.get(k) ?? null)),
    setItem: (k, v) => {
      m.set(k, v);
      return async ? later(undefined) : undefined;
    },
  };
}

// networkSource plays NetInfo: listeners get {isConnected, isInternetReachable}.
function networkSource() {
  const listeners = new Set();
  return {
    listeners,
    addEventListener(fn) {
      listeners.add(fn);
      fn({ isConnected: true, isInternetReachable: true }); // NetInfo reports the current state at once
      return () => listeners.delete(fn);
    },
    report(isConnected) {
      for (const fn of listeners) fn({ isConnected, isInternetReachable: isConnected ? true : false });
    },
  };
}

describe('liveness and freshness', () => {
  let srv;
  const clients = [];
  const client = (opts) => {
    const c = new PresenceClient({ ...fast, ...opts });
    clients.push(c);
    return c;
  };
  const closeAll = () => { while (clients.length) clients.pop().close(); };
  const connected = async (c, transport = Transport.WEBSOCKET, timeoutMs) => {
    if (c.transport !== transport) await nextEvent(c, 'transport', (x) => x === transport, timeoutMs);
  };
  before(async () => { srv = await startServer(['-grace', '500ms']); });
  after(async () => {
    closeAll();
    await srv.stop();
  });

  it('a device id is made once, kept in the app\'s storage, and sent on the socket (header or query) and on every REST request', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const blocked = await startProxy(srv.addr);
    t.after(() => blocked.close());
    blocked.mode = 'refuse';
    const token = await devToken(srv.url, 31, 'uma');
    const store = memoryStore();
    const via = `http://127.0.0.1:${proxy.port}`;
    const a = client({ url: via, token, tokenIn: 'header', storage: store });
    const id = a.deviceId;
    assert.match(id, UUID);
    assert.equal(store.map.get(DEVICE_KEY), id);
    const b = client({ url: via, token, tokenIn: 'query', storage: store });
    assert.equal(b.deviceId, id, 'the second client found the kept id');
    // c polls: its socket is refused, so everything goes over REST.
    const c = client({ url: via, wsUrl: `ws://127.0.0.1:${blocked.port}/ws`, token, tokenIn: 'header', storage: store, fallbackAfter: 1 });
    for (const x of [a, b, c]) x.connect();
    await connected(a);
    await connected(b);
    await connected(c, Transport.POLLING);
    await c.subscribe([31]);
    await c.setStatus({ is_busy: true });

    const reqs = proxy.requests();
    const sockets = reqs.filter((r) => r.path.startsWith('/ws'));
    assert.equal(sockets.length, 2);
    assert.equal(sockets[0].headers['x-device-id'], id, 'header mode');
    assert.equal(new URL(sockets[1].path, via).searchParams.get('device_id'), id, 'query mode');
    const rest = reqs.filter((r) => !r.path.startsWith('/ws'));
    assert.deepEqual([...new Set(rest.map((r) => `${r.method} ${r.path.split('?')[0]}`))].sort(),
      ['GET /users/presence', 'POST /users/me/heartbeat', 'PUT /users/me/status']);
    for (const r of rest) assert.equal(r.headers['x-device-id'], id, `${r.method} ${r.path}`);
  });

  it('an asynchronous store (AsyncStorage\'s shape) is waited for; a kept id that is malformed is replaced', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const token = await devToken(srv.url, 32, 'vic');
    const store = memoryStore({ async: true });
    store.map.set(DEVICE_KEY, 'not a device id, it has spaces');
    const a = client({ url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token, tokenIn: 'header', storage: store });
    assert.equal(a.deviceId, null, 'not known before the store answers');
    a.connect();
    await connected(a);
    assert.match(a.deviceId, UUID);
    await waitFor(() => store.map.get(DEVICE_KEY) === a.deviceId, 'the new id stored');
    assert.equal(proxy.requests()[0].headers['x-device-id'], a.deviceId);
    const b = client({ url: srv.url, token, storage: store });
    await waitFor(() => b.deviceId, 'the second client read the store');
    assert.equal(b.deviceId, a.deviceId);
  });

  it('deviceId is used as given and checked; a failing store leaves an id in memory and says so', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 33, 'wen');
    assert.equal(client({ url: srv.url, token, deviceId: 'tablet-7' }).deviceId, 'tablet-7');
    for (const bad of ['', 'has space', 'x'.repeat(65), 'é', 7]) {
      assert.throws(() => new PresenceClient({ url: srv.url, token, deviceId: bad }), /deviceId must be 1 to 64 visible ASCII characters/);
    }
    assert.throws(() => new PresenceClient({ url: srv.url, token, storage: { getItem() {} } }), /storage must have getItem and setItem/);
    const broken = { getItem() { throw new Error('quota'); }, setItem() { throw new Error('quota'); } };
    const c = client({ url: srv.url, token, tokenIn: 'header', storage: broken });
    const [err] = await nextEvent(c, 'error');
    assert.match(err.message, /cannot keep the device id in the storage: quota/);
    assert.match(c.deviceId, UUID);
    c.connect();
    await connected(c);
    // Without any store (Node has no localStorage), each client is a device of its own.
    const d1 = client({ url: srv.url, token });
    const d2 = client({ url: srv.url, token });
    assert.match(d1.deviceId, UUID);
    assert.notEqual(d1.deviceId, d2.deviceId);
  });

  it('entries turn stale when the socket is lost (change and freshness events) and fresh with the next snapshot', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const xia = client({ url: srv.url, token: await devToken(srv.url, 34, 'xia'), tokenIn: 'header' });
    xia.connect();
    const yan = client({ url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: await devToken(srv.url, 35, 'yan'), tokenIn: 'header', fallbackAfter: Infinity });
    yan.connect();
    await yan.subscribe([34]);
    await waitFor(() => yan.get(34)?.is_online, 'xia online');
    assert.equal(yan.get(34).stale, false);
    assert.equal(yan.get(34).stale_since, null);

    const heard = Date.now();
    const staleEvent = nextEvent(yan, 'freshness', (ids, stale) => stale && ids.includes(34));
    const change = nextEvent(yan, 'change', (ids) => ids.includes(34));
    proxy.mode = 'refuse';
    proxy.cut();
    await staleEvent;
    await change;
    const p = yan.get(34);
    assert.equal(p.stale, true);
    assert.equal(p.is_online, true, 'the last known value is kept');
    const since = Date.parse(p.stale_since);
    assert.ok(since <= Date.now() && since >= heard - 60000, `stale_since ${p.stale_since}`);
    // xia changes meanwhile; yan cannot know.
    await xia.setStatus({ is_busy: true });

    const fresh = nextEvent(yan, 'freshness', (ids, stale) => !stale && ids.includes(34));
    proxy.mode = 'forward';
    await fresh;
    const q = yan.get(34);
    assert.equal(q.stale, false);
    assert.equal(q.stale_since, null);
    assert.equal(q.is_busy, true);

    // pause() leaves a stale cache too.
    const paused = nextEvent(yan, 'freshness', (ids, stale) => stale);
    yan.pause();
    await paused;
    assert.equal(yan.get(34).stale, true);
  });

  it('while polling, entries are fresh as long as polls are answered, and stale when they fail', async (t) => {
    t.after(closeAll);
    const blocked = await startProxy(srv.addr);
    t.after(() => blocked.close());
    blocked.mode = 'refuse';
    const rest = await startProxy(srv.addr);
    t.after(() => rest.close());
    const zed = client({
      url: `http://127.0.0.1:${rest.port}`, wsUrl: `ws://127.0.0.1:${blocked.port}/ws`, token: await devToken(srv.url, 36, 'zed'),
      fallbackAfter: 1, pollIntervalMs: 100, heartbeatIntervalMs: 300,
    });
    zed.connect();
    await zed.subscribe([36]);
    await connected(zed, Transport.POLLING);
    assert.equal(zed.get(36).stale, false);
    rest.mode = 'refuse';
    rest.cut();
    await nextEvent(zed, 'freshness', (ids, stale) => stale && ids.includes(36));
    assert.equal(zed.transport, Transport.NONE);
    rest.mode = 'forward';
    await nextEvent(zed, 'freshness', (ids, stale) => !stale && ids.includes(36));
    assert.equal(zed.transport, Transport.POLLING);
  });

  it('a polling client that watches nobody is connected only while its heartbeats are answered', async (t) => {
    t.after(closeAll);
    const blocked = await startProxy(srv.addr);
    t.after(() => blocked.close());
    blocked.mode = 'refuse';
    const rest = await startProxy(srv.addr);
    t.after(() => rest.close());
    const c = client({
      url: `http://127.0.0.1:${rest.port}`, wsUrl: `ws://127.0.0.1:${blocked.port}/ws`, token: await devToken(srv.url, 37, 'ada'),
      fallbackAfter: 1, pollIntervalMs: 100, heartbeatIntervalMs: 300,
    });
    c.connect();
    await connected(c, Transport.POLLING);
    assert.equal(c.state, State.CONNECTED);
    // The server goes away: the next heartbeat fails.
    rest.mode = 'refuse';
    rest.cut();
    await nextEvent(c, 'state', (s) => s === State.CONNECTING);
    const states = [];
    c.on('state', (s) => states.push(s));
    // Four more heartbeats refused (and a dozen poll ticks): never "connected".
    const tried = rest.attempts.length;
    await waitFor(() => rest.attempts.length >= tried + 4, 'four more heartbeats', 5000);
    assert.deepEqual(states, [], 'the client said connected with the server gone');
    assert.equal(c.transport, Transport.NONE);
    rest.mode = 'forward';
    await nextEvent(c, 'state', (s) => s === State.CONNECTED);
  });

  it('close 4429 is "back off, then reconnect": several seconds\' wait (here 300 ms or more), never a stop', async (t) => {
    t.after(closeAll);
    const strict = await startServer(['-max-messages-per-second', '1', '-message-burst', '2']);
    t.after(() => strict.stop());
    const proxy = await startProxy(strict.addr);
    t.after(() => proxy.close());
    const c = client({
      url: strict.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: await devToken(strict.url, 38, 'bea'), tokenIn: 'header',
      rateLimitBackoffMs: 300, fallbackAfter: Infinity,
    });
    const states = [];
    c.on('state', (s) => states.push(s));
    c.connect();
    await connected(c);
    // An app that subscribes one user at a time, fifty times at once,
    // sends fifty messages: over this server's rate.
    const closed = nextEvent(c, 'error', (e) => e.code === 4429);
    const subs = Array.from({ length: 50 }, (_, i) => c.subscribe(i + 100));
    const [err] = await closed;
    const closedAt = performance.now();
    assert.equal(err.rateLimited, true);
    assert.match(err.message, /4429.*reconnecting in \d+ ms/);
    const before = proxy.attempts.length;
    await connected(c);
    const gap = proxy.attempts[before] - closedAt;
    t.diagnostic(`reconnected ${Math.round(gap)} ms after the 4429`);
    assert.ok(gap >= 300 - 5, `reconnected ${gap} ms after the 4429, before the back-off`);
    await Promise.all(subs);
    assert.equal(c.watching.length, 50);
    assert.ok(!states.includes(State.STOPPED), states.join(' → '));
  });

  it('measured: the reconnect after an outage waits out the backoff, unless network news (NetInfo\'s shape) comes', async (t) => {
    t.after(closeAll);
    // Default timings (500 ms doubling to 30 s), and the longest jitter:
    // after 15.5 s of outage the next wait is 16 s.
    const slow = { backoffInitialMs: 500, backoffMaxMs: 30000, connectTimeoutMs: 10000, random: () => 0.999, fallbackAfter: Infinity };
    const pa = await startProxy(srv.addr);
    const pb = await startProxy(srv.addr);
    t.after(() => Promise.all([pa.close(), pb.close()]));
    const net = networkSource();
    const told = client({ ...slow, url: srv.url, wsUrl: `ws://127.0.0.1:${pa.port}/ws`, token: await devToken(srv.url, 39, 'cai'), tokenIn: 'header', network: net });
    const plain = client({ ...slow, url: srv.url, wsUrl: `ws://127.0.0.1:${pb.port}/ws`, token: await devToken(srv.url, 40, 'dan'), tokenIn: 'header' });
    told.connect();
    plain.connect();
    await connected(told);
    await connected(plain);
    for (const p of [pa, pb]) {
      p.mode = 'refuse';
      p.cut();
    }
    net.report(false);
    await waitFor(() => pa.attempts.length >= 6 && pb.attempts.length >= 6, 'five reconnect attempts each', 25000);
    for (const p of [pa, pb]) p.mode = 'forward';
    const back = performance.now();
    net.report(true);
    const delay = async (c) => { await connected(c, Transport.WEBSOCKET, 30000); return performance.now() - back; };
    const [withNews, without] = await Promise.all([delay(told), delay(plain)]);
    t.diagnostic(`reconnected ${Math.round(withNews)} ms after the network came back with NetInfo's news, ${(without / 1000).toFixed(1)} s without`);
    assert.ok(withNews < 5000, `with news: ${withNews} ms`);
    assert.ok(without > 10000, `without news the backoff wait should hold: ${without} ms`);
    // close() lets go of the source.
    told.close();
    assert.equal(net.listeners.size, 0);
  }, 60000);

  it('news that comes while a socket attempt is still opening makes the next attempt go at once if that one fails', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const net = networkSource();
    // Waits of 2.5–5 s between attempts; an attempt gives up after 1 s.
    const c = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: await devToken(srv.url, 42, 'fio'), tokenIn: 'header',
      network: net, backoffInitialMs: 5000, backoffMaxMs: 5000, connectTimeoutMs: 1000, fallbackAfter: Infinity,
    });
    c.connect();
    await connected(c);
    proxy.mode = 'blackhole';
    proxy.cut();
    const n = proxy.connections;
    await waitFor(() => proxy.connections > n, 'an attempt swallowed by the network');
    // The network changes while that attempt hangs; the new one works.
    proxy.mode = 'forward';
    const t0 = performance.now();
    net.report(false);
    net.report(true);
    await connected(c, Transport.WEBSOCKET, 10000);
    const ms = performance.now() - t0;
    t.diagnostic(`back ${Math.round(ms)} ms after the news (the hanging attempt's timeout: 1000 ms; the backoff: 2500–5000 ms)`);
    assert.ok(ms < 2500, `back after ${ms} ms: the backoff was waited out`);
  });

  it('news that the network went checks the socket at once: a dead one is found within the pong deadline, not at the next ping', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const net = networkSource();
    const c = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: await devToken(srv.url, 41, 'eli'), tokenIn: 'header',
      network: net, pingIntervalMs: 600000, pongTimeoutMs: 500, fallbackAfter: Infinity,
    });
    c.connect();
    await connected(c);
    proxy.freeze();
    const lost = nextEvent(c, 'transport', (x) => x === Transport.NONE, 5000);
    net.report(false);
    await lost;
  });

  describe('in the background', () => {
    let hb;
    before(async () => {
      hb = await startServer(['-grace', '500ms', '-heartbeat-ttl', '1500ms']);
    });
    after(() => hb.stop());

    it('when not busy the client goes silent: the user is offline after the grace, with no REST request', async (t) => {
      t.after(closeAll);
      const watcher = client({ url: hb.url, token: await devToken(hb.url, 53, 'hal'), tokenIn: 'header' });
      watcher.connect();
      await watcher.subscribe([54]);
      let rest = 0;
      const ivy = client({
        url: hb.url, token: await devToken(hb.url, 54, 'ivy'), tokenIn: 'header', heartbeatIntervalMs: 200,
        fetch: (url, init) => { rest++; return fetch(url, init); },
      });
      ivy.connect();
      await ivy.setStatus({ is_busy: false });
      await waitFor(() => watcher.get(54)?.is_online, 'ivy online');
      const t0 = performance.now();
      ivy.background();
      await waitFor(() => watcher.get(54)?.is_online === false, 'ivy offline');
      const ms = performance.now() - t0;
      t.diagnostic(`offline ${Math.round(ms)} ms after background() (grace 500 ms)`);
      assert.ok(ms >= 400, `offline after ${ms} ms, before the grace`);
      assert.equal(rest, 0);
    });
  });
});
