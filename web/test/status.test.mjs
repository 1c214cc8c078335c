// The signed-in user's status, against a real presenced: the client's
// last word wins. One update in flight at most, newer calls merged into
// the next, never the same update on two transports at once, kept while
// disconnected and set again after every reconnect or switch of transport.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { PresenceClient, PresenceError, State, Transport, decodeFrame } from '@presenced/client';
import { devToken, mulberry32, nextEvent, restStatus, startProxy, startServer, waitFor } from './helpers.mjs';

const it = (name, fn, timeout = 30000) => test(name, { timeout }, fn);

const fast = { backoffInitialMs: 50, backoffMaxMs: 400, connectTimeoutMs: 3000, requestTimeoutMs: 5000 };

// tracer watches the client's set_status traffic on both transports, on
// its way to the real socket and the real fetch: how many updates are on
// their way at once, and what each one carried.
function tracer() {
  const t = {
    inflight: 0,
    max: 0,
    socket: [], // bodies of set_status messages
    rest: [], // bodies of PUT /users/me/status
    onSend: null, // called after each set_status message is handed to the socket
    start(kind, body) {
      t[kind].push(body);
      t.inflight++;
      t.max = Math.max(t.max, t.inflight);
    },
    end() { t.inflight--; },
    reset() {
      t.socket = [];
      t.rest = [];
      t.max = t.inflight;
    },
  };
  class TracedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      const waiting = new Set();
      this._waiting = waiting;
      // Registered before the client's own handlers, so the count drops
      // before the client acts on the answer.
      this.addEventListener('message', (ev) => {
        for (const m of decodeFrame(String(ev.data))) {
          if (waiting.delete(m.id)) t.end();
        }
      });
      this.addEventListener('close', () => {
        for (const id of waiting) {
          waiting.delete(id);
          t.end();
        }
      });
    }

    send(data) {
      const m = JSON.parse(data);
      if (m.type === 'set_status') {
        const { type, id, ...body } = m;
        this._waiting.add(id);
        t.start('socket', body);
        super.send(data);
        t.onSend?.();
        return;
      }
      super.send(data);
    }
  }
  t.WebSocket = TracedWebSocket;
  t.fetch = async (url, init) => {
    const put = init.method === 'PUT' && url.endsWith('/users/me/status');
    if (put) t.start('rest', JSON.parse(init.body));
    try {
      return await fetch(url, init);
    } finally {
      if (put) t.end();
    }
  };
  return t;
}

// expectStatus is what the server holds after updates applied in order,
// by the server's rules: a wait time only while busy.
function applyServerRules(st, u) {
  const s = { ...st };
  if (u.is_online !== undefined) s.is_online = u.is_online;
  if (u.is_busy !== undefined) s.is_busy = u.is_busy;
  if (u.wait_time !== undefined) s.wait_time = u.wait_time;
  if (!s.is_busy) s.wait_time = null;
  return s;
}

function randomUpdate(rnd) {
  const u = {};
  if (rnd() < 0.7) u.is_busy = rnd() < 0.5;
  if (rnd() < 0.5) u.wait_time = rnd() < 0.2 ? null : Math.floor(rnd() * 120);
  if (rnd() < 0.1) u.is_online = rnd() < 0.7;
  if (Object.keys(u).length === 0) u.is_busy = true;
  return u;
}

const pick = (s) => ({ is_online: s.is_online, is_busy: s.is_busy, wait_time: s.wait_time });

describe('the status: the last word wins', () => {
  let srv;
  const clients = [];
  const client = (opts) => {
    const c = new PresenceClient({ WebSocket, ...fast, ...opts });
    clients.push(c);
    return c;
  };
  const closeAll = () => { while (clients.length) clients.pop().close(); };
  before(async () => { srv = await startServer(['-grace', '500ms']); });
  after(async () => {
    closeAll();
    await srv.stop();
  });

  it('100 calls at once, 20 runs over the socket: the server ends with the last call every time, and the client never stops', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 11, 'kim');
    const tr = tracer();
    const kim = client({ url: srv.url, token, tokenIn: 'header', WebSocket: tr.WebSocket, fetch: tr.fetch });
    const states = [];
    const errors = [];
    kim.on('state', (s) => states.push(s));
    kim.on('error', (e) => errors.push(e));
    kim.connect();
    await nextEvent(kim, 'transport', (x) => x === Transport.WEBSOCKET);
    const rnd = mulberry32(10);
    let expected = { is_online: true, is_busy: false, wait_time: null };
    let right = 0;
    const perRun = [];
    for (let run = 0; run < 20; run++) {
      tr.reset();
      const updates = Array.from({ length: 100 }, () => randomUpdate(rnd));
      // The last word says something the others may not: busy or not, by turns.
      updates[99] = { is_busy: run % 2 === 0, wait_time: run % 2 === 0 ? 10 + run : null };
      for (const u of updates) expected = applyServerRules(expected, u);
      const answers = await Promise.all(updates.map((u) => kim.setStatus(u)));
      // Every call, superseded or not, settles with the final status.
      for (const a of answers) assert.deepEqual(a, answers[99]);
      const held = pick(await restStatus(srv.url, token));
      assert.deepEqual(pick(answers[99]), expected, `run ${run}: the answer`);
      if (JSON.stringify(held) === JSON.stringify(expected)) right++;
      assert.deepEqual(held, expected, `run ${run}: what the server holds`);
      perRun.push(tr.socket.length);
      assert.equal(tr.rest.length, 0, 'nothing went over REST');
    }
    t.diagnostic(`final status right in ${right} of 20 runs; set_status messages per run of 100 calls: ${perRun.join(', ')}; most in flight at once: ${tr.max}`);
    assert.equal(right, 20);
    assert.ok(tr.max <= 1, `${tr.max} updates were in flight at once`);
    assert.ok(Math.max(...perRun) <= 2, 'calls that came during an update went as one');
    assert.ok(!states.includes(State.STOPPED), `the client stopped: ${states.join(' → ')}`);
    assert.equal(kim.state, State.CONNECTED);
    assert.equal(kim.transport, Transport.WEBSOCKET);
    assert.deepEqual(errors, []);
    assert.equal(kim.statusPending, false);
  }, 60000);

  it('100 calls at once over polling, 5 runs: the same, within the REST rate limit', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 12, 'lee');
    const blocked = await startProxy(srv.addr);
    t.after(() => blocked.close());
    blocked.mode = 'refuse';
    const tr = tracer();
    const lee = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${blocked.port}/ws`, token, tokenIn: 'header', fallbackAfter: 1,
      WebSocket: tr.WebSocket, fetch: tr.fetch,
    });
    const errors = [];
    lee.on('error', (e) => { if (e.status !== undefined) errors.push(e); });
    lee.connect();
    await nextEvent(lee, 'transport', (x) => x === Transport.POLLING);
    const rnd = mulberry32(20);
    let expected = { is_online: true, is_busy: false, wait_time: null };
    const perRun = [];
    for (let run = 0; run < 5; run++) {
      tr.reset();
      const updates = Array.from({ length: 100 }, () => randomUpdate(rnd));
      updates[99] = { is_busy: run % 2 === 0 };
      for (const u of updates) expected = applyServerRules(expected, u);
      const answers = await Promise.all(updates.map((u) => lee.setStatus(u)));
      for (const a of answers) assert.deepEqual(a, answers[99]);
      assert.deepEqual(pick(await restStatus(srv.url, token)), expected, `run ${run}`);
      perRun.push(tr.rest.length);
    }
    t.diagnostic(`PUT /users/me/status per run of 100 calls: ${perRun.join(', ')}`);
    assert.ok(Math.max(...perRun) <= 2);
    assert.equal(tr.socket.length, 0);
    assert.ok(tr.max <= 1);
    assert.deepEqual(errors, [], 'no REST request was refused (429)');
  });

  it('a burst across a lost socket: no update goes twice at once, none over REST, and the last one wins', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 13, 'max');
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const tr = tracer();
    const max = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token, tokenIn: 'header', WebSocket: tr.WebSocket, fetch: tr.fetch,
    });
    max.connect();
    await nextEvent(max, 'transport', (x) => x === Transport.WEBSOCKET);
    const rnd = mulberry32(30);
    for (let run = 0; run < 5; run++) {
      const updates = Array.from({ length: 100 }, () => randomUpdate(rnd));
      updates[99] = { is_busy: run % 2 === 0, is_online: true };
      let expected = pick(await restStatus(srv.url, token));
      for (const u of updates) expected = applyServerRules(expected, u);
      // The socket goes while the first update is on its way (handed to
      // the kernel, maybe forwarded, maybe not); the rest of the burst
      // comes while the client reconnects.
      const cut = new Promise((resolve) => {
        tr.onSend = () => {
          tr.onSend = null;
          setImmediate(() => { proxy.cut(); resolve(); });
        };
      });
      const answers = updates.slice(0, 50).map((u) => max.setStatus(u));
      await cut;
      answers.push(...updates.slice(50).map((u) => max.setStatus(u)));
      const done = await Promise.all(answers);
      for (const a of done) assert.deepEqual(a, done[99]);
      assert.deepEqual(pick(await restStatus(srv.url, token)), expected, `run ${run}`);
    }
    assert.ok(proxy.connections >= 6, 'the socket was cut and replaced in each run');
    assert.ok(tr.max <= 1, `${tr.max} updates were in flight at once`);
    assert.equal(tr.rest.length, 0, 'an update lost with the socket went over REST');
  });

  it('while disconnected the newest status is kept; the calls wait and settle with what the server holds after the reconnect', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 14, 'nia');
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const tr = tracer();
    const nia = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token, tokenIn: 'header', fallbackAfter: Infinity,
      WebSocket: tr.WebSocket, fetch: tr.fetch,
    });
    nia.connect();
    await nextEvent(nia, 'transport', (x) => x === Transport.WEBSOCKET);
    await nia.setStatus({ is_busy: false });

    proxy.mode = 'refuse';
    proxy.cut();
    await waitFor(() => nia.transport === Transport.NONE, 'the socket lost');
    tr.reset();
    let settled = 0;
    const calls = [
      nia.setStatus({ is_busy: true, wait_time: 5 }),
      nia.setStatus({ wait_time: 20 }),
      nia.setStatus({ is_online: false }),
    ].map((p) => p.finally(() => { settled++; }));
    assert.deepEqual(nia.desiredStatus, { is_busy: true, wait_time: 20, is_online: false });
    assert.equal(nia.statusPending, true);
    await waitFor(() => proxy.connections >= 5, 'a few reconnect attempts');
    assert.equal(settled, 0, 'a call settled while no transport could carry it');
    assert.equal(tr.socket.length + tr.rest.length, 0);

    proxy.mode = 'forward';
    const answers = await Promise.all(calls);
    for (const a of answers) {
      assert.equal(a.is_busy, true);
      assert.equal(a.wait_time, 20);
      assert.equal(a.is_online, false);
    }
    assert.deepEqual(tr.socket, [{ is_busy: true, wait_time: 20, is_online: false }], 'one update, the merge, once');
    assert.deepEqual(pick(await restStatus(srv.url, token)), { is_online: false, is_busy: true, wait_time: 20 });
    assert.equal(nia.statusPending, false);
  });

  it('a call waits at most statusTimeoutMs (rejected as queued, the status still kept); close() rejects at once', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 15, 'oli');
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    proxy.mode = 'refuse';
    const oli = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token, tokenIn: 'header', fallbackAfter: Infinity,
      statusTimeoutMs: 300,
    });
    oli.connect();
    await assert.rejects(oli.setStatus({ is_busy: true, wait_time: 45 }), (err) => {
      assert.ok(err instanceof PresenceError);
      assert.equal(err.queued, true);
      assert.match(err.message, /not confirmed within 300 ms; the client keeps it/);
      return true;
    });
    assert.equal(oli.statusPending, true);
    // The network comes back: the kept status reaches the server.
    const status = nextEvent(oli, 'status');
    proxy.mode = 'forward';
    const [st] = await status;
    assert.equal(st.is_busy, true);
    assert.equal(st.wait_time, 45);
    assert.deepEqual(pick(await restStatus(srv.url, token)), { is_online: true, is_busy: true, wait_time: 45 });

    proxy.mode = 'refuse';
    proxy.cut();
    await waitFor(() => oli.transport === Transport.NONE, 'the socket lost');
    const waiting = oli.setStatus({ is_busy: false });
    oli.close();
    await assert.rejects(waiting, /closed/);
  });

  it('bad input is refused at once, with a message naming the field', async (t) => {
    t.after(closeAll);
    const c = client({ url: srv.url, token: await devToken(srv.url, 16, 'pia') });
    await assert.rejects(c.setStatus({}), /at least one/);
    await assert.rejects(c.setStatus(null), /takes an object/);
    await assert.rejects(c.setStatus({ busy: true }), /unknown field busy/);
    await assert.rejects(c.setStatus({ is_busy: 'yes' }), /is_busy must be true or false; got "yes"/);
    for (const w of [-5, 1.5, 10081, '15']) {
      await assert.rejects(c.setStatus({ wait_time: w }), (err) => {
        assert.ok(err instanceof TypeError);
        assert.match(err.message, /wait_time must be a whole number of minutes from 0 to 10080, or null/);
        return true;
      }, String(w));
    }
    assert.deepEqual(c.desiredStatus, {}, 'refused input is not kept');
  });

  it('last_seen_visible is a status field like the others: false hides last_seen from watchers', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 17, 'quin');
    const quin = client({ url: srv.url, token, tokenIn: 'header' });
    const watcher = client({ url: srv.url, token: await devToken(srv.url, 18, 'rue'), tokenIn: 'header' });
    quin.connect();
    watcher.connect();
    await watcher.subscribe([17]);
    await waitFor(() => watcher.get(17)?.last_seen, 'a last_seen for quin');
    const st = await quin.setStatus({ last_seen_visible: false });
    assert.equal(st.last_seen_visible, false);
    assert.equal((await restStatus(srv.url, token)).last_seen_visible, false);
    // A watcher's fresh snapshot reads it as null.
    await watcher.unsubscribe([17]);
    const [p] = await watcher.subscribe([17]);
    assert.equal(p.last_seen, null);
    assert.deepEqual(quin.desiredStatus, { last_seen_visible: false });
    await assert.rejects(quin.setStatus({ last_seen_visible: 'no' }), /last_seen_visible must be true or false/);
  });

  it('a new socket sets the status again, only the fields the app set', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 17, 'quinn');
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const tr = tracer();
    const quinn = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token, tokenIn: 'header', fallbackAfter: Infinity,
      WebSocket: tr.WebSocket, fetch: tr.fetch,
    });
    quinn.connect();
    await quinn.setStatus({ is_busy: true });
    // Another device of quinn's sets the wait time, which this app never set.
    const res = await fetch(srv.url + '/users/me/status', {
      method: 'PUT', headers: { Authorization: 'Bearer ' + token }, body: JSON.stringify({ wait_time: 25 }),
    });
    assert.equal(res.status, 200);
    tr.reset();
    const again = nextEvent(quinn, 'status');
    proxy.cut();
    const [st] = await again;
    assert.deepEqual(tr.socket, [{ is_busy: true }]);
    assert.equal(st.is_busy, true);
    assert.equal(st.wait_time, 25, 'a field the app never set was overwritten');
    assert.ok(proxy.connections >= 2);
  });

  it('a switch to polling and back sets the status again on each transport', async (t) => {
    t.after(closeAll);
    const token = await devToken(srv.url, 18, 'rae');
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const tr = tracer();
    const rae = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token, tokenIn: 'header', fallbackAfter: 1,
      pollIntervalMs: 200, WebSocket: tr.WebSocket, fetch: tr.fetch,
    });
    rae.connect();
    await nextEvent(rae, 'transport', (x) => x === Transport.WEBSOCKET);
    await rae.setStatus({ is_busy: true, wait_time: 30 });
    tr.reset();
    proxy.mode = 'refuse';
    proxy.cut();
    await nextEvent(rae, 'transport', (x) => x === Transport.POLLING);
    await waitFor(() => tr.rest.length === 1 && tr.inflight === 0, 'the status set again over REST');
    assert.deepEqual(tr.rest, [{ is_busy: true, wait_time: 30 }]);
    assert.deepEqual(tr.socket, []);
    proxy.mode = 'forward';
    await nextEvent(rae, 'transport', (x) => x === Transport.WEBSOCKET);
    await waitFor(() => tr.socket.length === 1 && tr.inflight === 0, 'the status set again on the socket');
    assert.deepEqual(tr.socket, [{ is_busy: true, wait_time: 30 }]);
    assert.equal(tr.rest.length, 1);
    assert.ok(tr.max <= 1);
  });

  it('a server restarted on the memory store gets the status back: watchers see the user busy again', async (t) => {
    t.after(closeAll);
    let s = await startServer(['-grace', '300ms']);
    const addr = s.addr;
    t.after(() => s.stop());
    const opts = { tokenIn: 'header', fallbackAfter: Infinity };
    // -dev signs with a new secret at each start: the token functions ask the server of the moment.
    const sam = client({ ...opts, url: s.url, token: () => devToken(s.url, 21, 'sam') });
    const tia = client({ ...opts, url: s.url, token: () => devToken(s.url, 22, 'tia') });
    sam.connect();
    await sam.setStatus({ is_busy: true, wait_time: 15 });
    tia.connect();
    await tia.subscribe([21]);
    assert.equal(tia.get(21).is_busy, true);

    await s.stop();
    await waitFor(() => tia.transport === Transport.NONE && sam.transport === Transport.NONE, 'both lost');
    s = await startServer(['-grace', '300ms'], { addr });
    // The new server knew nothing of sam's call; his client tells it again.
    const p = await waitFor(() => {
      const e = tia.get(21);
      return e && !e.stale && e.is_online && e.is_busy ? e : null;
    }, 'sam busy on the new server');
    assert.equal(p.wait_time, 15);
    const held = await restStatus(s.url, await devToken(s.url, 21, 'sam'));
    assert.deepEqual(pick(held), { is_online: true, is_busy: true, wait_time: 15 });
  });
});
