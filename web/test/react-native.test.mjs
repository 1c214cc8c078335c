// @presenced/client/react-native's bindReactNative with fake AppState and
// NetInfo emitters (a React Native runtime cannot run here), driving a
// real client against a real presenced: the foreground connects, the
// background keeps a busy user online by REST heartbeats and lets anyone
// else go offline, 'inactive' changes nothing, NetInfo's news reconnects
// at once, and unbinding lets go of both.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { PresenceClient, State, Transport } from '@presenced/client';
import { bindReactNative } from '@presenced/client/react-native';
import { devToken, nextEvent, startProxy, startServer, waitFor } from './helpers.mjs';

const it = (name, fn, timeout = 30000) => test(name, { timeout }, fn);

// fakeAppState has react-native's AppState shape: currentState, and
// addEventListener('change', fn) returning a subscription with remove().
function fakeAppState(currentState = 'active') {
  const listeners = new Set();
  return {
    currentState,
    listeners,
    addEventListener(type, fn) {
      assert.equal(type, 'change');
      listeners.add(fn);
      return { remove: () => listeners.delete(fn) };
    },
    go(next) {
      this.currentState = next;
      for (const fn of [...listeners]) fn(next);
    },
  };
}

// fakeNetInfo has @react-native-community/netinfo's shape: addEventListener
// returns an unsubscribe function, and a new listener hears the state.
function fakeNetInfo() {
  const listeners = new Set();
  let state = { isConnected: true, isInternetReachable: true };
  return {
    listeners,
    addEventListener(fn) {
      listeners.add(fn);
      queueMicrotask(() => fn(state));
      return () => listeners.delete(fn);
    },
    report(up) {
      state = { isConnected: up, isInternetReachable: up };
      for (const fn of [...listeners]) fn(state);
    },
  };
}

describe('bindReactNative', () => {
  let srv;
  const clients = [];
  const client = (opts) => {
    const c = new PresenceClient({ WebSocket, tokenIn: 'header', backoffInitialMs: 50, backoffMaxMs: 400, fallbackAfter: Infinity, ...opts });
    clients.push(c);
    return c;
  };
  const closeAll = () => { while (clients.length) clients.pop().close(); };
  before(async () => { srv = await startServer(['-grace', '500ms', '-heartbeat-ttl', '3s']); });
  after(async () => {
    closeAll();
    await srv.stop();
  });

  it('foreground connects; background while busy keeps the user online by heartbeats; inactive changes nothing; active comes back', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const watcher = client({ url: srv.url, token: await devToken(srv.url, 82, 'wat') });
    watcher.connect();
    await watcher.subscribe([81]);
    const app = fakeAppState('active');
    const rn = client({
      url: `http://127.0.0.1:${proxy.port}`, token: await devToken(srv.url, 81, 'rae'), heartbeatIntervalMs: 1000, deviceId: 'phone-81',
    });
    const unbind = bindReactNative(rn, { AppState: app, NetInfo: fakeNetInfo() });
    await nextEvent(rn, 'transport', (tr) => tr === Transport.WEBSOCKET);
    await rn.setStatus({ is_busy: true, wait_time: 30 });
    await waitFor(() => watcher.get(81)?.is_busy, 'the watcher sees the call');

    app.go('inactive');
    assert.equal(rn.state, State.CONNECTED, 'inactive changed the state');

    app.go('background');
    assert.equal(rn.state, State.BACKGROUND);
    // Heartbeats, with the device id, after the socket's close: past the
    // grace and more than one heartbeat TTL, the user is online and busy.
    const beats = () => proxy.requests().filter((r) => r.method === 'POST' && r.path === '/users/me/heartbeat');
    await waitFor(() => beats().length >= 4, 'four heartbeats in the background', 10000);
    assert.ok(beats().every((r) => r.headers['x-device-id'] === 'phone-81'));
    assert.equal(watcher.get(81).is_online, true, 'a user in a call showed offline in the background');
    assert.equal(watcher.get(81).is_busy, true);

    app.go('active');
    await nextEvent(rn, 'transport', (tr) => tr === Transport.WEBSOCKET);
    assert.equal(rn.state, State.CONNECTED);

    unbind();
    assert.equal(app.listeners.size, 0);
    app.go('background');
    assert.equal(rn.state, State.CONNECTED, 'an unbound AppState still drove the client');
  });

  it('background when not busy goes silent: offline after the grace, no heartbeat', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const watcher = client({ url: srv.url, token: await devToken(srv.url, 84, 'wes') });
    watcher.connect();
    await watcher.subscribe([83]);
    const app = fakeAppState('active');
    const rn = client({ url: `http://127.0.0.1:${proxy.port}`, token: await devToken(srv.url, 83, 'ria'), heartbeatIntervalMs: 300 });
    bindReactNative(rn, { AppState: app });
    await waitFor(() => watcher.get(83)?.is_online, 'the watcher sees the user online');
    const before = proxy.requests().length;
    const offline = nextEvent(watcher, 'presence', (p) => p.user_id === 83 && !p.is_online);
    app.go('background');
    assert.equal(rn.state, State.BACKGROUND);
    await offline;
    assert.deepEqual(proxy.requests().slice(before), [], 'a request went out in the background');
  });

  it('NetInfo\'s news that the network is back reconnects at once, where the backoff would wait', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const net = fakeNetInfo();
    // A long backoff, at its longest jitter: 4 s before the first retry,
    // 8 s before the second.
    const rn = client({
      url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: await devToken(srv.url, 85, 'roy'),
      backoffInitialMs: 4000, backoffMaxMs: 16000, random: () => 0.999,
    });
    const unbind = bindReactNative(rn, { AppState: fakeAppState('active'), NetInfo: net });
    await nextEvent(rn, 'transport', (tr) => tr === Transport.WEBSOCKET);
    proxy.mode = 'refuse';
    proxy.cut();
    net.report(false);
    await waitFor(() => proxy.attempts.length >= 2, 'a refused retry', 10000);
    proxy.mode = 'forward';
    const back = performance.now();
    net.report(true);
    await nextEvent(rn, 'transport', (tr) => tr === Transport.WEBSOCKET, 10000);
    const delay = performance.now() - back;
    t.diagnostic(`back on the socket ${Math.round(delay)} ms after NetInfo's news, with 8 s of backoff to wait`);
    assert.ok(delay < 4000, `reconnected ${delay} ms after the news: the backoff's time, not the news's`);
    unbind();
    assert.equal(net.listeners.size, 0, 'unbind left the NetInfo listener');
  }, 60000);

  it('an app launched in the background does not connect until it is shown', async (t) => {
    t.after(closeAll);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const app = fakeAppState('background');
    const rn = client({ url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws`, token: await devToken(srv.url, 86, 'rex') });
    bindReactNative(rn, { AppState: app });
    assert.equal(rn.state, State.IDLE);
    app.go('active');
    await nextEvent(rn, 'transport', (tr) => tr === Transport.WEBSOCKET);
    assert.equal(proxy.connections, 1);
    assert.throws(() => bindReactNative({}, {}), /client must be a PresenceClient/);
    assert.throws(() => bindReactNative(rn, { AppState: {} }), /AppState must have addEventListener/);
  });
});
