// @presenced/client/react in jsdom with @testing-library/react, against a
// real presenced: counted subscriptions (two components on one id, one
// unmounted, then the other, under StrictMode), useMyStatus,
// useConnectionState and stale entries through an outage.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JSDOM } from 'jsdom';
import WebSocket from 'ws';

import { PresenceClient } from '@presenced/client';
import { devToken, restStatus, startProxy, startServer } from './helpers.mjs';

// A browser's globals, before React and the testing library load.
const dom = new JSDOM('<!doctype html><html><body></body></html>', { url: 'http://localhost/' });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
Object.defineProperty(globalThis, 'navigator', { value: dom.window.navigator, configurable: true });
for (const k of ['HTMLElement', 'Node', 'MutationObserver', 'getComputedStyle']) globalThis[k] ??= dom.window[k];
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const React = await import('react');
const { render, screen, fireEvent, cleanup, waitFor } = await import('@testing-library/react');
const { PresenceProvider, usePresence, useMyStatus, useConnectionState, watchCount } = await import('@presenced/client/react');
const h = React.createElement;
// The server's events arrive on their own, not inside act(): React is told
// so (render and fireEvent still run inside act, which the library sets).
globalThis.IS_REACT_ACT_ENVIRONMENT = false;

const it = (name, fn) => test(name, { timeout: 30000 }, fn);
const fast = { backoffInitialMs: 50, backoffMaxMs: 400, connectTimeoutMs: 3000, requestTimeoutMs: 5000, fallbackAfter: Infinity };

// counting is a ws WebSocket that records the subscribe and unsubscribe
// messages the client sends, as the server receives them.
function counting() {
  const sent = { subscribe: [], unsubscribe: [] };
  class CountingWebSocket extends WebSocket {
    send(data) {
      const m = JSON.parse(data);
      if (m.type in sent) sent[m.type].push(m.user_ids);
      super.send(data);
    }
  }
  return { sent, WebSocket: CountingWebSocket, times: (type, id) => sent[type].filter((ids) => ids.includes(id)).length };
}

function Contact({ id, label }) {
  const p = usePresence([id]).get(id);
  const text = !p ? 'unknown' : `${p.username}:${p.is_busy ? 'busy' : p.is_online ? 'online' : 'offline'}${p.stale ? ':stale' : ''}`;
  return h('span', { 'data-testid': label }, text);
}

const text = (label) => screen.getByTestId(label).textContent;

describe('React bindings', () => {
  let srv;
  const clients = [];
  const client = (opts) => {
    const c = new PresenceClient({ WebSocket, tokenIn: 'header', ...fast, ...opts });
    clients.push(c);
    return c;
  };
  before(async () => { srv = await startServer(['-grace', '300ms']); });
  after(async () => {
    cleanup();
    while (clients.length) clients.pop().close();
    await srv.stop();
    dom.window.close();
  });

  it('two components on one id share one subscription; unmounting one leaves the other live; the last unsubscribes', async (t) => {
    t.after(cleanup);
    const bob = client({ token: await devToken(srv.url, 72, 'bob'), url: srv.url });
    bob.connect();
    const tr = counting();
    const viewer = client({ token: await devToken(srv.url, 71, 'ann'), url: srv.url, WebSocket: tr.WebSocket });
    viewer.connect();
    // StrictMode mounts, unmounts and mounts every effect once more.
    const tree = (children) => h(React.StrictMode, null, h(PresenceProvider, { client: viewer }, ...children));
    const a = h(Contact, { key: 'a', id: 72, label: 'a' });
    const b = h(Contact, { key: 'b', id: 72, label: 'b' });
    const view = render(tree([a, b]));
    await waitFor(() => assert.equal(text('a'), 'bob:online'));
    assert.equal(text('b'), 'bob:online');
    assert.equal(watchCount(viewer, 72), 2);
    assert.equal(tr.times('subscribe', 72), 1, 'one subscription for two components');

    await bob.setStatus({ is_busy: true });
    await waitFor(() => assert.equal(text('a'), 'bob:busy'));
    await waitFor(() => assert.equal(text('b'), 'bob:busy'));

    // One goes: the other still gets bob's changes, so nothing unsubscribed him.
    view.rerender(tree([b]));
    assert.equal(watchCount(viewer, 72), 1);
    await bob.setStatus({ is_busy: false });
    await waitFor(() => assert.equal(text('b'), 'bob:online'));
    assert.equal(tr.times('unsubscribe', 72), 0);
    assert.deepEqual(viewer.watching, [72]);

    // The last one goes: bob is unsubscribed, once.
    view.rerender(tree([]));
    assert.equal(watchCount(viewer, 72), 0);
    await waitFor(() => assert.equal(tr.times('unsubscribe', 72), 1));
    assert.deepEqual(viewer.watching, []);
    assert.equal(viewer.get(72), undefined);
    assert.equal(tr.times('subscribe', 72), 1);
  });

  it('useMyStatus and useConnectionState follow the client; entries turn stale during an outage and fresh after it', async (t) => {
    t.after(cleanup);
    const proxy = await startProxy(srv.addr);
    t.after(() => proxy.close());
    const carl = client({ token: await devToken(srv.url, 74, 'carl'), url: srv.url });
    carl.connect();
    const token = await devToken(srv.url, 73, 'dee');
    const dee = client({ token, url: srv.url, wsUrl: `ws://127.0.0.1:${proxy.port}/ws` });
    dee.connect();

    function Me() {
      const { status, desired, pending, setStatus } = useMyStatus();
      const { state, transport } = useConnectionState();
      const busy = desired.is_busy === true;
      return h('div', null,
        h('span', { 'data-testid': 'conn' }, `${state}/${transport}`),
        h('span', { 'data-testid': 'me' }, `${busy ? 'busy' : 'free'}${pending ? ' sending' : ''}${status ? ' server:' + status.is_busy : ''}`),
        h('button', { onClick: () => { setStatus({ is_busy: !busy }).catch(() => {}); } }, 'toggle'));
    }
    render(h(PresenceProvider, { client: dee }, h(Me), h(Contact, { id: 74, label: 'carl' })));
    await waitFor(() => assert.equal(text('conn'), 'connected/websocket'));
    await waitFor(() => assert.equal(text('carl'), 'carl:online'));
    assert.equal(text('me'), 'free');

    fireEvent.click(screen.getByText('toggle'));
    assert.equal(text('me'), 'busy sending', 'the tap shows at once, as not yet confirmed');
    await waitFor(() => assert.equal(text('me'), 'busy server:true'));
    assert.equal((await restStatus(srv.url, token)).is_busy, true);

    // The outage: the banner's state, and carl's entry as last known.
    proxy.mode = 'refuse';
    proxy.cut();
    await waitFor(() => assert.equal(text('conn'), 'connecting/none'));
    assert.equal(text('carl'), 'carl:online:stale');
    fireEvent.click(screen.getByText('toggle'));
    assert.equal(text('me'), 'free sending server:true');

    proxy.mode = 'forward';
    await waitFor(() => assert.equal(text('conn'), 'connected/websocket'), { timeout: 5000 });
    await waitFor(() => assert.equal(text('carl'), 'carl:online'));
    await waitFor(() => assert.equal(text('me'), 'free server:false'));
    assert.equal((await restStatus(srv.url, token)).is_busy, false);
  });

  it('a hook without a PresenceProvider says what is missing', async (t) => {
    t.after(cleanup);
    class Catch extends React.Component {
      constructor(props) {
        super(props);
        this.state = { error: null };
      }

      static getDerivedStateFromError(error) { return { error }; }

      render() { return this.state.error ? h('span', { 'data-testid': 'err' }, this.state.error.message) : this.props.children; }
    }
    // React reports the caught error on the console as well; keep it quiet.
    const error = console.error;
    console.error = () => {};
    try {
      render(h(Catch, null, h(Contact, { id: 1, label: 'x' })));
    } finally {
      console.error = error;
    }
    assert.match(text('err'), /need a <PresenceProvider client=\{\.\.\.\}> above them/);
  });
});
