// The client's tests, against a real presenced started here. The ws package
// plays React Native's WebSocket: both take headers as a third constructor
// argument, so tokenIn 'header' is tested as an app would use it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import {
  PresenceClient, PresenceError, State, Transport, backoffDelay, decodeFrame, shouldReconnect, tokenExpiry,
} from '@presenced/client';
import { devToken, nextEvent, signToken, sleep, startProxy, startServer, waitFor } from './helpers.mjs';

// Every test has a deadline: a hang is a failure, not a stuck run.
const it = (name, fn) => test(name, { timeout: 30000 }, fn);

// Short timings so that reconnects and fallbacks happen within a test.
const fast = {
  WebSocket,
  backoffInitialMs: 50,
  backoffMaxMs: 400,
  connectTimeoutMs: 3000,
  requestTimeoutMs: 5000,
};

const clients = [];
function client(opts) {
  const c = new PresenceClient({ ...fast, ...opts });
  clients.push(c);
  return c;
}
function closeAll() {
  while (clients.length) clients.pop().close();
}

async function connected(c, transport = Transport.WEBSOCKET) {
  if (c.transport !== transport) await nextEvent(c, 'transport', (t) => t === transport);
  assert.equal(c.state, State.CONNECTED);
}

// presenceOf waits until c's cache shows user id matching pred.
function presenceOf(c, id, pred, what, timeoutMs) {
  return waitFor(() => {
    const p = c.get(id);
    return p && pred(p) ? p : null;
  }, what ?? `user ${id}'s presence`, timeoutMs);
}

describe('pure helpers', () => {
  it('decodeFrame accepts one event or an array of them', () => {
    const one = decodeFrame('{"type":"presence","user_id":2,"is_online":true}');
    assert.equal(one.length, 1);
    const two = decodeFrame('[{"type":"presence","user_id":2},{"type":"presence","user_id":3}]');
    assert.deepEqual(two.map((m) => m.user_id), [2, 3]);
    assert.throws(() => decodeFrame('[1,2]'), PresenceError);
    assert.throws(() => decodeFrame('{"no":"type"}'), PresenceError);
    assert.throws(() => decodeFrame('not json'), SyntaxError);
  });

  it('close codes 4400–4499 stop reconnecting, but 4429 (back off, then reconnect); the rest reconnect', () => {
    for (const code of [4400, 4401, 4403, 4409, 4499]) assert.equal(shouldReconnect(code), false, code);
    for (const code of [1000, 1001, 1006, 1011, 4000, 4001, 4002, 4099, 4429, 4500]) assert.equal(shouldReconnect(code), true, code);
  });

  it('backoff grows exponentially up to the cap, with jitter in its upper half', () => {
    const t = { backoffInitialMs: 100, backoffMaxMs: 1000, backoffFactor: 2 };
    assert.deepEqual([0, 1, 2, 3, 4, 9].map((n) => backoffDelay(n, t, () => 0)), [50, 100, 200, 400, 500, 500]);
    assert.deepEqual([0, 1, 2, 3, 4].map((n) => backoffDelay(n, t, () => 0.999999)).map(Math.round), [100, 200, 400, 800, 1000]);
  });

  it('tokenExpiry reads a JWT\'s exp, and 0 from anything else', () => {
    assert.equal(tokenExpiry(signToken('k', { sub: '1', exp: 1700000000 })), 1700000000 * 1000);
    assert.equal(tokenExpiry(signToken('k', { sub: '1' })), 0);
    assert.equal(tokenExpiry('opaque-token'), 0);
    assert.equal(tokenExpiry('a.%%%.c'), 0);
  });

  it('bad options are refused with a message', () => {
    assert.throws(() => new PresenceClient({ token: 't' }), /url must be/);
    assert.throws(() => new PresenceClient({ url: 'http://x' }), /token must be/);
    assert.throws(() => new PresenceClient({ url: 'http://x', token: 't', tokenIn: 'cookie' }), /tokenIn/);
    assert.throws(() => new PresenceClient({ url: 'http://x', token: 't', pollIntervalMs: -1 }), /pollIntervalMs/);
    const c = new PresenceClient({ url: 'http://x', token: 't', WebSocket });
    assert.throws(() => c.subscribe([0]), /not a positive integer/);
    assert.throws(() => c.subscribe(['abc']), /not a positive integer/);
  });
});

describe('against a live server', () => {
  let srv;
  let tok;
  before(async () => {
    srv = await startServer(['-grace', '500ms']);
    tok = {};
    const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gus', 'hana', 'ivan'];
    for (const [i, name] of names.entries()) tok[i + 1] = await devToken(srv.url, i + 1, name);
  });
  after(async () => {
    closeAll();
    await srv.stop();
  });

  it('connects with a header (React Native) or a query token (browser) and sees changes live', async (t) => {
    t.after(closeAll);
    const alice = client({ url: srv.url, token: tok[1], tokenIn: 'header' });
    assert.equal(alice.transport, Transport.NONE);
    assert.equal(alice.state, State.IDLE);
    const transports = [];
    alice.on('transport', (tr) => transports.push(tr));
    alice.connect();
    // bob has never been seen: the snapshot is empty, but he is watched.
    assert.deepEqual(await alice.subscribe([2]), []);
    await connected(alice);
    assert.deepEqual(transports, [Transport.WEBSOCKET]);

    const bob = client({ url: srv.url, token: tok[2], tokenIn: 'query' });
    const online = nextEvent(alice, 'presence', (p) => p.user_id === 2 && p.is_online);
    bob.connect();
    const [p, prev] = await online;
    assert.equal(p.username, 'bob');
    assert.equal(prev, undefined);
    await connected(bob);

    const busy = nextEvent(alice, 'presence', (p) => p.user_id === 2 && p.is_busy);
    const st = await bob.setStatus({ is_busy: true, wait_time: 15 });
    assert.equal(st.user_id, 2);
    assert.equal(st.is_busy, true);
    assert.equal(st.wait_time, 15);
    const [b, before] = await busy;
    assert.equal(b.wait_time, 15);
    assert.equal(before.is_busy, false);
    assert.equal(alice.get(2).is_busy, true);
  });

  it('setStatus refuses bad input before it reaches the server', async (t) => {
    t.after(closeAll);
    const alice = client({ url: srv.url, token: tok[1], tokenIn: 'header' });
    alice.connect();
    await connected(alice);
    await assert.rejects(alice.setStatus({}), /at least one/);
    await assert.rejects(alice.setStatus({ busy: true }), /unknown field busy/);
    // The server's rule, checked before the status is kept: a bad field
    // merged into the kept status would spoil every later update.
    await assert.rejects(alice.setStatus({ wait_time: -5 }), (err) => {
      assert.ok(err instanceof TypeError);
      assert.match(err.message, /wait_time must be a whole number of minutes from 0 to 10080, or null; got -5/);
      return true;
    });
    // The connection lives on.
    assert.equal((await alice.setStatus({ is_busy: false })).is_busy, false);
    assert.equal(alice.transport, Transport.WEBSOCKET);
  });

  it('subscribe sends large id lists in chunks the server accepts; unsubscribe stops events', async (t) => {
    t.after(closeAll);
    const alice = client({ url: srv.url, token: tok[1], tokenIn: 'header' });
    alice.connect();
    const ids = Array.from({ length: 250 }, (_, i) => i + 1);
    const known = await alice.subscribe(ids);
    assert.ok(known.some((p) => p.user_id === 1), 'alice herself is known and watched');
    assert.equal(alice.watching.length, 250);

    const carol = client({ url: srv.url, token: tok[3], tokenIn: 'query' });
    carol.connect();
    await presenceOf(alice, 3, (p) => p.is_online, 'carol online');
    await alice.unsubscribe([3]);
    assert.equal(alice.get(3), undefined);
    assert.equal(alice.watching.includes(3), false);
    let heard = 0;
    alice.on('presence', (p) => { if (p.user_id === 3) heard++; });
    // A change that alice no longer watches, then one she does, on the
    // same hub: when the second arrives the first would have too.
    await carol.setStatus({ is_busy: true });
    const own = nextEvent(alice, 'presence', (p) => p.user_id === 1 && p.is_busy);
    await alice.setStatus({ is_busy: true });
    await own;
    assert.equal(heard, 0);
    await alice.setStatus({ is_busy: false });
  });

  it('a frame holding an array of events updates every user in it', async (t) => {
    t.after(closeAll);
    // Count frames that carry several events, as the socket hands them to
    // the client: the hub packs whatever waits when its writer wakes,
    // which a burst of changes makes likely.
    let counting = false;
    let frames = 0;
    let arrays = 0;
    class CountingWebSocket extends WebSocket {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (ev) => {
          if (!counting) return;
          frames++;
          if (String(ev.data).startsWith('[')) arrays++;
        });
      }
    }
    const alice = client({ url: srv.url, token: tok[1], tokenIn: 'header', WebSocket: CountingWebSocket });
    alice.connect();
    await alice.subscribe([4, 5, 6, 7]);
    const others = [4, 5, 6, 7].map((id) => client({ url: srv.url, token: tok[id], tokenIn: 'header' }));
    for (const o of others) o.connect();
    await Promise.all(others.map((o) => connected(o)));
    counting = true;
    const rounds = 20;
    for (let r = 1; r <= rounds; r++) {
      await Promise.all(others.map((o, i) => o.setStatus({ is_busy: true, wait_time: r * 10 + i })));
    }
    for (const [i, id] of [4, 5, 6, 7].entries()) {
      await presenceOf(alice, id, (p) => p.wait_time === rounds * 10 + i, `user ${id} at the last wait time`);
    }
    t.diagnostic(`${frames} frames, ${arrays} of them arrays`);
    assert.ok(frames > 0);
  });

  it('a refused token stops the client: no reconnect (4401)', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const c = client({ url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: 'not-a-token', tokenIn: 'header' });
    const errors = [];
    c.on('error', (e) => errors.push(e));
    const waiting = c.subscribe([2]);
    c.connect();
    await nextEvent(c, 'state', (s) => s === State.STOPPED);
    assert.equal(c.lastError.code, 4401);
    assert.equal(errors.length, 1);
    await assert.rejects(waiting, (err) => err.code === 4401);
    // Backoff is at most 400 ms here: a reconnect would have come by now.
    await sleep(1500);
    assert.equal(proxy.connections, 1);
    assert.equal(c.transport, Transport.NONE);

    // A new token starts it again.
    c.setToken(tok[1]);
    await connected(c);
    assert.equal(proxy.connections, 2);
  });

  it('too many connections (4409) stops the extra client', async (t) => {
    t.after(closeAll);
    const few = await startServer(['-max-connections-per-user', '2']);
    t.after(() => few.stop());
    const token = await devToken(few.url, 6, 'frank');
    const mine = [1, 2].map(() => client({ url: few.url, token, tokenIn: 'header' }));
    for (const c of mine) c.connect();
    await Promise.all(mine.map((c) => connected(c)));
    const extra = client({ url: few.url, token, tokenIn: 'header' });
    extra.connect();
    await nextEvent(extra, 'state', (s) => s === State.STOPPED);
    assert.equal(extra.lastError.code, 4409);
  });

  it('a REST 401 while polling stops the client as 4401 does', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    proxy.mode = 'refuse';
    const c = client({ url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: 'not-a-token', tokenIn: 'header' });
    c.connect();
    await nextEvent(c, 'state', (s) => s === State.STOPPED);
    assert.equal(c.lastError.status, 401);
    assert.equal(c.lastError.code, 4401);
  });

  it('reconnects after losing the socket, subscribes again and refreshes the snapshot', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const alice = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: tok[1], tokenIn: 'header', fallbackAfter: Infinity,
    });
    const bob = client({ url: srv.url, token: tok[2], tokenIn: 'header' });
    bob.connect();
    await connected(bob);
    await bob.setStatus({ is_busy: false });
    alice.connect();
    await alice.subscribe([2]);
    assert.equal(alice.get(2).is_busy, false);

    // The network goes: every socket through the proxy is cut and new
    // ones are refused for a while.
    proxy.mode = 'refuse';
    const lost = nextEvent(alice, 'transport', (tr) => tr === Transport.NONE);
    proxy.cut();
    await lost;
    assert.equal(alice.state, State.CONNECTING);
    // bob changes while alice cannot hear it.
    await bob.setStatus({ is_busy: true, wait_time: 30 });
    await waitFor(() => proxy.connections >= 3, 'alice to retry');
    assert.equal(alice.get(2).is_busy, false, 'stale until the snapshot');

    const refreshed = nextEvent(alice, 'presence', (p) => p.user_id === 2 && p.is_busy && p.wait_time === 30);
    proxy.mode = 'forward';
    await refreshed;
    assert.equal(alice.transport, Transport.WEBSOCKET);
    // Subscribed again: later changes arrive as events.
    const free = nextEvent(alice, 'presence', (p) => p.user_id === 2 && !p.is_busy);
    await bob.setStatus({ is_busy: false });
    await free;
  });

  it('retries are spaced by exponential backoff', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    proxy.mode = 'refuse';
    const c = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: tok[1], tokenIn: 'header',
      fallbackAfter: Infinity, backoffInitialMs: 100, backoffMaxMs: 800,
    });
    c.connect();
    await waitFor(() => proxy.attempts.length >= 6, 'six attempts');
    c.close();
    const gaps = proxy.attempts.slice(1, 6).map((at, i) => at - proxy.attempts[i]);
    t.diagnostic(`gaps between attempts (ms): ${gaps.map(Math.round).join(', ')}`);
    // Each wait is at least half its cap: 50, 100, 200, 400, 400 ms.
    const floors = [50, 100, 200, 400, 400];
    for (const [i, g] of gaps.entries()) assert.ok(g >= floors[i] - 5, `gap ${i} was ${g} ms, below ${floors[i]}`);
    assert.ok(gaps[3] > gaps[0], 'waits grow');
  });

  it('notices a dead socket by its ping and reconnects', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    // hana's frozen socket stays open on the server until its own ping
    // deadline, so she is used by no other test.
    const hana = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: tok[8], tokenIn: 'header',
      // A generous pong deadline: a busy machine may answer late.
      pingIntervalMs: 300, pongTimeoutMs: 1000, fallbackAfter: Infinity,
    });
    hana.connect();
    await hana.subscribe([9]);
    await connected(hana);
    // A live but idle socket answers its pings: it must not be taken for
    // dead, over many ping rounds.
    let drops = 0;
    const off = hana.on('transport', (tr) => { if (tr === Transport.NONE) drops++; });
    await sleep(3000);
    off();
    assert.equal(drops, 0, 'a healthy idle socket was dropped');
    assert.equal(proxy.connections, 1);
    // The path goes silent without a close, as when a phone loses its
    // network; new connections still get through.
    proxy.freeze();
    const lost = nextEvent(hana, 'transport', (tr) => tr === Transport.NONE);
    const t0 = performance.now();
    await lost;
    t.diagnostic(`dead socket noticed after ${Math.round(performance.now() - t0)} ms`);
    await connected(hana);
    assert.equal(proxy.connections, 2);
    const ivan = client({ url: srv.url, token: tok[9], tokenIn: 'header' });
    ivan.connect();
    await presenceOf(hana, 9, (p) => p.is_online, 'ivan online, heard through the new socket');
  });

  it('pause closes the socket (the user goes offline after the grace); resume reconnects and refreshes', async (t) => {
    t.after(closeAll);
    const alice = client({ url: srv.url, token: tok[1], tokenIn: 'header' });
    const bob = client({ url: srv.url, token: tok[2], tokenIn: 'header' });
    bob.connect();
    await bob.subscribe([1]);
    alice.connect();
    await alice.subscribe([2]);
    await presenceOf(bob, 1, (p) => p.is_online, 'alice online');

    alice.pause();
    assert.equal(alice.state, State.PAUSED);
    assert.equal(alice.transport, Transport.NONE);
    await presenceOf(bob, 1, (p) => !p.is_online && p.last_seen, 'alice offline with a last_seen');
    await bob.setStatus({ is_busy: true });
    await sleep(300);
    assert.equal(alice.get(2).is_busy, false, 'a paused client hears nothing');

    alice.resume();
    await presenceOf(alice, 2, (p) => p.is_busy, 'bob busy after resume');
    assert.equal(alice.transport, Transport.WEBSOCKET);
    await presenceOf(bob, 1, (p) => p.is_online, 'alice online again');
    await bob.setStatus({ is_busy: false });
  });

  it('falls back to REST polling when the socket is blocked, and returns to the socket', async (t) => {
    t.after(closeAll);
    // A server whose heartbeats last 1.5 s: the poller must send them
    // again and again to stay online.
    const hb = await startServer(['-grace', '300ms', '-heartbeat-ttl', '1500ms']);
    t.after(() => hb.stop());
    const alice1 = await devToken(hb.url, 1, 'alice');
    const bob2 = await devToken(hb.url, 2, 'bob');
    const proxy = await startProxy(hb.addr);
    t.after(() => proxy.close());
    proxy.mode = 'refuse';

    const bob = client({ url: hb.url, token: bob2, tokenIn: 'header' });
    bob.connect();
    await bob.subscribe([1]);

    // Every REST call of alice's is counted on its way to the real fetch.
    let restCalls = 0;
    const alice = client({
      url: hb.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: alice1, tokenIn: 'header',
      fallbackAfter: 2, pollIntervalMs: 200, heartbeatIntervalMs: 400, backoffMaxMs: 1000,
      fetch: (url, init) => { restCalls++; return fetch(url, init); },
    });
    const transports = [];
    alice.on('transport', (tr) => transports.push(tr));
    alice.connect();
    const snapshot = await alice.subscribe([2]);
    assert.equal(snapshot[0].username, 'bob');
    await connected(alice, Transport.POLLING);
    assert.ok(proxy.connections >= 2);

    // bob sees alice online through her heartbeats alone, and she stays
    // online for several heartbeat lifetimes.
    await presenceOf(bob, 1, (p) => p.is_online, 'alice online by heartbeat');
    let wentOffline = false;
    const off = bob.on('presence', (p) => { if (p.user_id === 1 && !p.is_online) wentOffline = true; });
    await sleep(4000);
    off();
    assert.equal(wentOffline, false, 'alice dropped offline while polling: heartbeats stopped');
    assert.equal(alice.transport, Transport.POLLING);

    // Changes flow both ways over REST.
    const seen = nextEvent(alice, 'presence', (p) => p.user_id === 2 && p.is_busy);
    await bob.setStatus({ is_busy: true, wait_time: 5 });
    await seen;
    const st = await alice.setStatus({ is_busy: true, wait_time: 20 });
    assert.equal(st.wait_time, 20);
    await presenceOf(bob, 1, (p) => p.is_busy && p.wait_time === 20, 'alice busy, set over REST');

    // The proxy lets sockets through again: alice goes back to the socket
    // by herself, and events arrive over it.
    proxy.mode = 'forward';
    await connected(alice, Transport.WEBSOCKET);
    assert.deepEqual(transports, [Transport.POLLING, Transport.WEBSOCKET]);
    // Polling has stopped: no REST call over five poll intervals.
    const calls = restCalls;
    await sleep(1000);
    assert.equal(restCalls, calls, 'still polling on the socket');
    assert.deepEqual(transports, [Transport.POLLING, Transport.WEBSOCKET]);
    const ev = nextEvent(alice, 'presence', (p) => p.user_id === 2 && !p.is_busy);
    await bob.setStatus({ is_busy: false });
    await ev;
    assert.equal(alice.transport, Transport.WEBSOCKET);
  });

  it('refreshes the socket\'s token before it expires, so the socket lives on', async (t) => {
    t.after(closeAll);
    const secret = 'a test secret that is long enough for HS256';
    // No leeway: the server closes a socket with 4002 right at its token's exp.
    const s = await startServer(['-dev-secret', secret, '-jwt-leeway', '0s']);
    t.after(() => s.stop());
    const proxy = await startProxy(s.addr);
    t.after(() => proxy.close());
    let issued = 0;
    const alice = client({
      url: s.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, tokenIn: 'header', fallbackAfter: Infinity,
      // Tokens that live 3 s: refreshed halfway through their life.
      token: () => {
        issued++;
        return signToken(secret, { sub: '1', username: 'alice', exp: Math.floor(Date.now() / 1000) + 3 });
      },
    });
    const errors = [];
    alice.on('error', (e) => errors.push(e));
    let drops = 0;
    alice.on('transport', (tr) => { if (tr === Transport.NONE) drops++; });
    alice.connect();
    await connected(alice);
    // Four tokens take longer than one token's life.
    await waitFor(() => issued >= 4, 'three refreshes', 15000);
    await alice.setStatus({ is_busy: true });
    assert.equal(drops, 0, 'the socket closed: its token ran out');
    assert.equal(proxy.connections, 1);
    assert.deepEqual(errors, []);
  });

  it('reconnects to a restarted server with a fresh token from the token function', async (t) => {
    t.after(closeAll);
    let s = await startServer(['-grace', '300ms']);
    const addr = s.addr;
    t.after(() => s.stop());
    let calls = 0;
    const alice = client({
      url: s.url, tokenIn: 'header', fallbackAfter: Infinity,
      token: async () => { calls++; return devToken(s.url, 1, 'alice'); },
    });
    // -dev invents a new signing secret at each start, so old tokens die
    // with the old server, as a rotated secret would make them.
    const bob = client({ url: s.url, token: () => devToken(s.url, 2, 'bob'), tokenIn: 'header', fallbackAfter: Infinity });
    bob.connect();
    await connected(bob);
    alice.connect();
    await alice.subscribe([2]);
    assert.equal(alice.get(2).is_online, true);
    assert.equal(calls, 1);

    // A graceful shutdown closes every socket with 1001: reconnect.
    const lost = nextEvent(alice, 'transport', (tr) => tr === Transport.NONE);
    await s.stop();
    await lost;
    s = await startServer(['-grace', '300ms'], { addr });
    await connected(alice);
    await connected(bob);
    assert.ok(calls >= 2, 'the token function is asked again for the new connection');
    // The new server learnt bob from his reconnect; alice's fresh snapshot
    // or the event that followed says he is online.
    await presenceOf(alice, 2, (p) => p.is_online, 'bob online on the new server');
    const busy = nextEvent(alice, 'presence', (p) => p.user_id === 2 && p.is_busy);
    await bob.setStatus({ is_busy: true });
    await busy;
  });
});
