// How the client gets and keeps a connection, against a real presenced:
// token functions told to refresh when the server says the token expired,
// a socket that opens and never answers (polling at once, remembered),
// and a platform without WebSocket (polling, and saying so).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { PresenceClient, State, Transport, tokenExpiry } from '@presenced/client';
import { devToken, nextEvent, restStatus, signToken, startProxy, startServer, waitFor } from './helpers.mjs';

const it = (name, fn, timeout = 30000) => test(name, { timeout }, fn);
const secret = 'a test secret that is long enough for HS256';

describe('connecting', () => {
  let srv;
  const clients = [];
  const client = (opts) => {
    const c = new PresenceClient({ WebSocket, backoffInitialMs: 50, backoffMaxMs: 400, ...opts });
    clients.push(c);
    return c;
  };
  const closeAll = () => { while (clients.length) clients.pop().close(); };
  before(async () => {
    // No leeway: the server closes a socket with 4002 right at its token's
    // exp, and refuses a token at its exp.
    srv = await startServer(['-dev-secret', secret, '-jwt-leeway', '0s', '-grace', '500ms']);
  });
  after(async () => {
    closeAll();
    await srv.stop();
  });

  // cachingToken is a token function as apps write them: it hands out the
  // token it holds until told to refresh, then signs a new one.
  function cachingToken(userId, lifeSeconds, first) {
    const f = (hint) => {
      f.calls.push(hint?.forceRefresh === true);
      if (f.token === null || hint?.forceRefresh) {
        f.token = signToken(secret, { sub: String(userId), username: 'u' + userId, exp: Math.floor(Date.now() / 1000) + lifeSeconds });
        f.issued++;
      }
      return f.token;
    };
    f.token = first ?? null;
    f.issued = 0;
    f.calls = [];
    f.forced = () => f.calls.filter(Boolean).length;
    return f;
  }

  it('a token function that caches is asked with forceRefresh when its token is about to expire: the socket lives on', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const token = cachingToken(51, 3);
    const c = client({ url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token, tokenIn: 'header', fallbackAfter: Infinity });
    let drops = 0;
    c.on('transport', (tr) => { if (tr === Transport.NONE) drops++; });
    c.connect();
    await nextEvent(c, 'transport', (tr) => tr === Transport.WEBSOCKET);
    // Three new tokens take longer than one token's life.
    await waitFor(() => token.issued >= 4, 'three forced refreshes', 15000);
    await c.setStatus({ is_busy: true });
    t.diagnostic(`token function calls (forceRefresh): ${token.calls.join(', ')}`);
    assert.equal(drops, 0, 'the socket closed: its token ran out');
    assert.equal(proxy.connections, 1, 'a reconnect was needed for a new token');
    assert.ok(token.forced() >= 3);
  });

  it('a cached token that expired is refused (4401) and asked for again with forceRefresh, once, instead of stopping', async (t) => {
    t.after(closeAll);
    const expired = signToken(secret, { sub: '52', username: 'u52', exp: Math.floor(Date.now() / 1000) - 60 });
    assert.ok(tokenExpiry(expired) < Date.now());
    const token = cachingToken(52, 600, expired);
    const c = client({ url: srv.url, token, tokenIn: 'header', fallbackAfter: Infinity });
    const states = [];
    c.on('state', (s) => states.push(s));
    c.connect();
    await nextEvent(c, 'transport', (tr) => tr === Transport.WEBSOCKET);
    assert.deepEqual(token.calls, [false, true]);
    assert.ok(!states.includes(State.STOPPED), states.join(' → '));

    // A function that has nothing better stops the client, after one try.
    const stuck = client({ url: srv.url, token: () => expired, tokenIn: 'header', fallbackAfter: Infinity });
    stuck.connect();
    await nextEvent(stuck, 'state', (s) => s === State.STOPPED);
    assert.equal(stuck.lastError.code, 4401);
  });

  it('a REST 401 while polling is retried with forceRefresh, and polling goes on', async (t) => {
    t.after(closeAll);
    const blocked = await startProxy(srv.addr);
    t.after(() => blocked.close());
    blocked.mode = 'refuse';
    const expired = signToken(secret, { sub: '53', username: 'u53', exp: Math.floor(Date.now() / 1000) - 60 });
    const token = cachingToken(53, 600, expired);
    const c = client({ url: srv.url, wsUrl: `ws://127.0.0.1:${blocked.port}/ws`, token, tokenIn: 'header', fallbackAfter: 1 });
    c.connect();
    await nextEvent(c, 'transport', (tr) => tr === Transport.POLLING);
    assert.equal(c.state, State.CONNECTED);
    assert.ok(token.forced() >= 1);
    await c.setStatus({ is_busy: true, wait_time: 5 });
    assert.equal((await restStatus(srv.url, token.token)).is_busy, true);
  });

  it('measured: a socket that opens and never answers falls back to polling within seconds, and the choice is remembered', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    proxy.mode = 'mute';
    // Default timings: a socket that never opened would be given up after
    // connectTimeoutMs (10 s), twice, before polling.
    const c = new PresenceClient({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: await devToken(srv.url, 54, 'u54'), tokenIn: 'header', WebSocket,
    });
    clients.push(c);
    const start = performance.now();
    c.connect();
    await nextEvent(c, 'transport', (tr) => tr === Transport.POLLING, 15000);
    const first = performance.now() - start;
    assert.ok(proxy.requests().some((r) => r.path.startsWith('/ws')), 'the socket went through the proxy');

    // Paused and resumed: it polls at once, without waiting on the socket.
    c.pause();
    const again = performance.now();
    c.resume();
    await nextEvent(c, 'transport', (tr) => tr === Transport.POLLING, 15000);
    const second = performance.now() - again;
    t.diagnostic(`polling ${Math.round(first)} ms after connect() (answerTimeoutMs 3000); after resume(), ${Math.round(second)} ms`);
    assert.ok(first >= 3000 - 5 && first < 8000, `fell back after ${first} ms`);
    assert.ok(second < 3000, `after resume, polling waited ${second} ms for the socket`);

    // Sockets get through again: back to the socket, and the memory goes.
    proxy.mode = 'forward';
    await nextEvent(c, 'transport', (tr) => tr === Transport.WEBSOCKET, 40000);
    c.pause();
    c.resume();
    const next = await nextEvent(c, 'transport', (tr) => tr !== Transport.NONE, 15000);
    assert.equal(next[0], Transport.WEBSOCKET, 'polled first though the socket had worked');
  }, 90000);

  it('without a WebSocket the client polls and says so: an error event, or console.warn when nobody listens', async (t) => {
    t.after(closeAll);
    const saved = globalThis.WebSocket;
    delete globalThis.WebSocket; // Node 22 and later have one
    t.after(() => { if (saved) globalThis.WebSocket = saved; });
    const token = await devToken(srv.url, 55, 'u55');
    const told = new PresenceClient({ url: srv.url, token, fallbackAfter: 1 });
    clients.push(told);
    const errors = [];
    told.on('error', (e) => errors.push(e.message));
    told.connect();
    await nextEvent(told, 'transport', (tr) => tr === Transport.POLLING);
    assert.equal(errors.length, 1, errors.join('; '));
    assert.match(errors[0], /no WebSocket here, so the client polls; in Node, pass the ws package/);

    const warned = [];
    const warn = console.warn;
    console.warn = (...args) => warned.push(args.join(' '));
    try {
      const quiet = new PresenceClient({ url: srv.url, token, fallbackAfter: 1 });
      clients.push(quiet);
      quiet.connect();
      quiet.pause();
      quiet.resume();
    } finally {
      console.warn = warn;
    }
    assert.equal(warned.length, 1, 'warned once for the client\'s life');
    assert.match(warned[0], /^presenced: no WebSocket here/);
  });
});

describe('the watch policy withdrawing a user', () => {
  let srv;
  before(async () => {
    srv = await startServer(['-dev-secret', secret, '-watch-policy', 'claim']);
  });
  after(async () => { await srv.stop(); });

  it('a user the server stops the watching of is dropped from watching and the cache, and the app is told', async (t) => {
    for (const id of [61, 62]) {
      const tok = signToken(secret, { sub: String(id), username: 'u' + id, exp: Math.floor(Date.now() / 1000) + 600 });
      const res = await fetch(srv.url + '/users/me/status', { method: 'PUT', headers: { Authorization: 'Bearer ' + tok }, body: '{"is_busy":true}' });
      assert.equal(res.status, 200);
    }
    // The first token lets user 60 watch 61 and 62, and expires soon, so
    // that the client refreshes it on the socket; the next lists 61 only.
    let issued = 0;
    const token = () => signToken(secret, {
      sub: '60', username: 'u60', watch: issued++ === 0 ? [61, 62] : [61],
      exp: Math.floor(Date.now() / 1000) + (issued === 1 ? 3 : 600),
    });
    const c = new PresenceClient({ url: srv.url, WebSocket, token, tokenIn: 'header', fallbackAfter: Infinity });
    t.after(() => c.close());
    c.connect();
    const got = await c.subscribe([61, 62]);
    assert.deepEqual(got.map((p) => p.user_id), [61, 62]);
    const changes = [];
    c.on('change', (ids) => changes.push(...ids));
    const [withdrawn] = await nextEvent(c, 'withdrawn', () => true, 15000);
    assert.deepEqual(withdrawn, [62]);
    assert.deepEqual(c.watching, [61]);
    assert.equal(c.get(62), undefined);
    assert.equal(c.get(61)?.is_busy, true);
    assert.ok(changes.includes(62), 'a change event names the dropped user');
    assert.equal(c.state, State.CONNECTED);
  });
});
