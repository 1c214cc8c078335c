// The client with the server's device model (issue 10's server side): a
// device is alive while its socket is open, or while its REST heartbeats
// are fresh and it has no socket; busy_since; appear offline that shows
// nothing. These tests need a server that knows devices.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { PresenceClient, State, Transport } from '@presenced/client';
import { devToken, nextEvent, restStatus, sleep, startProxy, startServer, waitFor } from './helpers.mjs';

const it = (name, fn, timeout = 30000) => test(name, { timeout }, fn);

const fast = { WebSocket, backoffInitialMs: 50, backoffMaxMs: 400, connectTimeoutMs: 3000, requestTimeoutMs: 5000 };
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe('devices, busy_since and invisibility', () => {
  const clients = [];
  const client = (opts) => {
    const c = new PresenceClient({ ...fast, tokenIn: 'header', ...opts });
    clients.push(c);
    return c;
  };
  const closeAll = () => { while (clients.length) clients.pop().close(); };
  const connected = async (c, transport = Transport.WEBSOCKET) => {
    if (c.transport !== transport) await nextEvent(c, 'transport', (x) => x === transport);
  };
  after(closeAll);

  describe('liveness per device', () => {
    let hb;
    before(async () => {
      // Heartbeats last 1.5 s here: a device that stops sending them is
      // soon gone.
      hb = await startServer(['-grace', '500ms', '-heartbeat-ttl', '1500ms']);
    });
    after(() => hb.stop());

    it('while busy the device stays alive by REST heartbeats sent after the socket closed, so watchers see the user busy; then it goes silent', async (t) => {
      t.after(closeAll);
      const watcher = client({ url: hb.url, token: await devToken(hb.url, 51, 'fay'), tokenIn: 'header' });
      watcher.connect();
      await watcher.subscribe([52]);
      let closedAt = 0;
      class Tracked extends WebSocket {
        constructor(...a) {
          super(...a);
          this.addEventListener('close', () => { closedAt = performance.now(); });
        }
      }
      const beats = [];
      const puts = [];
      const gus = client({
        url: hb.url, token: await devToken(hb.url, 52, 'gus'), tokenIn: 'header', WebSocket: Tracked, heartbeatIntervalMs: 400,
        fetch: (url, init) => {
          if (url.endsWith('/users/me/heartbeat')) beats.push(performance.now());
          if (init.method === 'PUT') puts.push(performance.now());
          return fetch(url, init);
        },
      });
      gus.connect();
      await gus.setStatus({ is_busy: true, wait_time: 20 });
      await waitFor(() => watcher.get(52)?.is_busy, 'gus busy');
      let offline = false;
      watcher.on('presence', (p) => { if (p.user_id === 52 && !p.is_online) offline = true; });

      gus.background();
      assert.equal(gus.state, State.BACKGROUND);
      assert.equal(gus.transport, Transport.NONE);
      // Twice the heartbeat TTL, far beyond the grace: still online and busy.
      await sleep(3000);
      assert.equal(offline, false, 'a user in a call showed offline in the background');
      assert.equal(watcher.get(52).is_busy, true);
      assert.ok(beats.length >= 5, `${beats.length} heartbeats`);
      assert.ok(closedAt > 0 && beats[0] >= closedAt, 'a heartbeat went before the socket\'s close completed');

      // The call ends while the app is still in the background: the change
      // goes over REST, and the heartbeats stop.
      const st = await gus.setStatus({ is_busy: false });
      assert.equal(st.is_busy, false);
      assert.equal(puts.length, 1);
      await waitFor(() => watcher.get(52)?.is_busy === false, 'gus free');
      const n = beats.length;
      await sleep(1200);
      assert.equal(beats.length, n, 'heartbeats went on after the call ended');
      // The REST update was the device's last sign of life.
      await waitFor(() => watcher.get(52)?.is_online === false, 'gus offline after the heartbeat TTL and the grace', 5000);

      gus.foreground();
      await connected(gus);
      await waitFor(() => watcher.get(52)?.is_online, 'gus online again');
    });
  });

  it('measured: offline within the grace after closing, though the last update went over REST', async (t) => {
    t.after(closeAll);
    // The seed's heartbeat TTL (90 s): an update over REST used to keep the
    // user online that long after their socket closed.
    const grace = 1000;
    const s = await startServer(['-grace', `${grace}ms`]);
    t.after(() => s.stop());
    const proxy = await startProxy(s.addr);
    t.after(() => proxy.close());
    proxy.mode = 'refuse';
    const watcher = client({ url: s.url, token: await devToken(s.url, 61, 'jo') });
    watcher.connect();
    await watcher.subscribe([62]);
    const kai = client({
      url: s.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: await devToken(s.url, 62, 'kai'), fallbackAfter: 1,
      pollIntervalMs: 300,
    });
    kai.connect();
    await connected(kai, Transport.POLLING);
    // Over REST, with the device id: a heartbeat for the TTL, of this device.
    await kai.setStatus({ is_busy: true, wait_time: 10 });
    await waitFor(() => watcher.get(62)?.is_busy, 'kai busy');
    // The socket comes through: the device is alive by its socket now.
    proxy.mode = 'forward';
    await connected(kai);
    const t0 = performance.now();
    kai.close();
    await waitFor(() => watcher.get(62)?.is_online === false, 'kai offline', 10000);
    const ms = performance.now() - t0;
    t.diagnostic(`offline ${Math.round(ms)} ms after the close (grace ${grace} ms; the update before it went over REST)`);
    assert.ok(ms >= grace - 100, `offline after ${ms} ms, before the grace`);
    assert.ok(ms <= grace + 1000, `offline after ${ms} ms: more than grace + 1 s`);
  });

  it('busy_since comes from the server: set when busy begins, kept while busy, null when not', async (t) => {
    t.after(closeAll);
    const s = await startServer([]);
    t.after(() => s.stop());
    const watcher = client({ url: s.url, token: await devToken(s.url, 63, 'lou') });
    watcher.connect();
    await watcher.subscribe([64]);
    const mia = client({ url: s.url, token: await devToken(s.url, 64, 'mia') });
    mia.connect();
    const before = Date.now();
    const st = await mia.setStatus({ is_busy: true, wait_time: 15 });
    assert.match(st.busy_since, RFC3339);
    const since = Date.parse(st.busy_since);
    assert.ok(since >= Math.floor(before / 1000) * 1000 - 1000 && since <= Date.now() + 1000, st.busy_since);
    const p = await waitFor(() => watcher.get(64)?.busy_since ? watcher.get(64) : null, 'busy_since at the watcher');
    assert.equal(p.busy_since, st.busy_since);
    // A new wait time is the same call.
    await mia.setStatus({ wait_time: 30 });
    await waitFor(() => watcher.get(64)?.wait_time === 30, 'the new wait time');
    assert.equal(watcher.get(64).busy_since, st.busy_since);
    await mia.setStatus({ is_busy: false });
    await waitFor(() => watcher.get(64)?.is_busy === false, 'mia free');
    assert.equal(watcher.get(64).busy_since, null);
    assert.equal(mia.lastStatus.busy_since, null);
  });

  it('appear offline shows nothing: offline, not busy, last_seen frozen across 3 ping intervals, no event; back is one event', async (t) => {
    t.after(closeAll);
    const s = await startServer(['-ping-interval', '1s']);
    t.after(() => s.stop());
    const watcherToken = await devToken(s.url, 65, 'ned');
    const watcher = client({ url: s.url, token: watcherToken });
    watcher.connect();
    await watcher.subscribe([66]);
    const token = await devToken(s.url, 66, 'ora');
    const ora = client({ url: s.url, token });
    ora.connect();
    await ora.setStatus({ is_busy: true, wait_time: 20 });
    await waitFor(() => watcher.get(66)?.is_busy, 'ora busy');
    await ora.setStatus({ is_online: false });
    const hidden = await waitFor(() => (watcher.get(66)?.is_online === false ? watcher.get(66) : null), 'ora hidden');
    assert.equal(hidden.is_busy, false);
    assert.equal(hidden.wait_time, null);
    assert.equal(hidden.busy_since, null);

    const presenceOf = async () => {
      const res = await fetch(s.url + '/users/66/presence', { headers: { Authorization: 'Bearer ' + watcherToken } });
      return res.json();
    };
    const first = await presenceOf();
    let events = 0;
    watcher.on('presence', (p) => { if (p.user_id === 66) events++; });
    // While hidden: a change of call, a second device, pings answered.
    await ora.setStatus({ is_busy: true, wait_time: 40 });
    const second = client({ url: s.url, token });
    second.connect();
    await connected(second);
    await sleep(3200);
    assert.equal(events, 0, 'watchers heard of a hidden user');
    const later = await presenceOf();
    assert.deepEqual(later, first, 'what others can read changed while hidden');
    assert.equal(later.last_seen, hidden.last_seen);
    // Her own status shows the truth.
    const own = await restStatus(s.url, token);
    assert.equal(own.is_busy, true);
    assert.equal(own.wait_time, 40);

    await ora.setStatus({ is_online: true });
    await waitFor(() => watcher.get(66)?.is_online, 'ora back');
    await sleep(500);
    assert.equal(events, 1, 'coming back was not one event');
    const back = watcher.get(66);
    assert.equal(back.is_busy, true);
    assert.equal(back.wait_time, 40);
    assert.match(back.busy_since, RFC3339);
  });
});
