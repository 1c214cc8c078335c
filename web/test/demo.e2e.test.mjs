// End-to-end: the demo page in Debian's headless Chromium, driven by
// playwright-core, against a real presenced. People use it as a person
// would: through the form, the buttons and what the page shows.

import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

import { PresenceClient } from '@presenced/client';
import { devToken, repoRoot, startHttpProxy, startServer, waitFor } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const GRACE_MS = 2000;
// Phone-sized, as most users hold it.
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

// Where the screenshot goes: always into the artifacts folder; into
// docs/demo.png (shown by the README) when UPDATE_SCREENSHOT=1.
const artifacts = process.env.PRESENCED_ARTIFACTS ?? path.join(tmpdir(), 'presenced-e2e');

let srv;
const browsers = [];
const nodeClients = [];

// launch starts a browser with a fresh profile. Chromium reaches nothing
// but this machine: every host name but localhost fails to resolve, and
// the background services that phone home are off.
async function launch(options = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'presenced-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-default-apps', '--disable-domain-reliability', '--disable-client-side-phishing-detection',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
    ],
    ...PHONE,
    ...options,
  });
  browsers.push({ ctx, dir });
  return ctx;
}

async function openPage(ctx) {
  const page = ctx.pages().find((p) => p.url() === 'about:blank') ?? await ctx.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(err.message));
  page.problems = problems;
  await page.goto(srv.url + '/');
  return page;
}

async function signIn(page, id, name) {
  await page.fill('input[name=user_id]', String(id));
  await page.fill('input[name=username]', name);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#me:not([hidden])');
}

async function watch(page, ids) {
  await page.fill('input[name=ids]', ids);
  await page.click('#watch-form button[type=submit]');
}

const row = (id, state) => `#list li[data-user-id="${id}"]` + (state ? `[data-state="${state}"]` : '');

// clickedAt arms page to note the time of the next click on selector.
function clickedAt(page, selector) {
  return page.evaluate((sel) => new Promise((resolve) => {
    document.querySelector(sel).addEventListener('click', () => resolve(Date.now()), { capture: true, once: true });
  }), selector);
}

// shownAt resolves with the time page first shows selector, watched by a
// MutationObserver in the page, so no test-side polling delay counts.
function shownAt(page, selector) {
  return page.evaluate((sel) => new Promise((resolve) => {
    if (document.querySelector(sel)) { resolve(Date.now()); return; }
    new MutationObserver((_, obs) => {
      if (document.querySelector(sel)) { obs.disconnect(); resolve(Date.now()); }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  }), selector);
}

// latency clicks selector on from and measures, on the machine's one
// clock, how long until to shows what it waits for.
async function latency(from, selector, to, shown) {
  const clicked = clickedAt(from, selector);
  const seen = shownAt(to, shown);
  // Let both observers be in place before the click.
  await from.evaluate(() => new Promise(requestAnimationFrame));
  await to.evaluate(() => new Promise(requestAnimationFrame));
  await from.click(selector);
  const [c, s] = await Promise.all([clicked, seen]);
  return s - c;
}

function transportIs(page, t, timeout = 15000) {
  return page.waitForSelector(`#transport[data-transport="${t}"]`, { timeout });
}

// textIs waits until selector's text is text (or matches it, a RegExp):
// what a page shows after a change may come a frame later than what
// the test waited for.
async function textIs(page, selector, text, timeout = 10000) {
  const want = text instanceof RegExp ? { source: text.source, flags: text.flags } : text;
  try {
    await page.waitForFunction(([sel, w]) => {
      const got = document.querySelector(sel)?.textContent ?? '';
      return typeof w === 'string' ? got === w : new RegExp(w.source, w.flags).test(got);
    }, [selector, want], { timeout });
  } catch (err) {
    const got = await page.textContent(selector).catch(() => '(none)');
    throw new Error(`${selector} shows ${JSON.stringify(got)}, not ${text}: ${err.message}`);
  }
}

// nodeClient is another user on a phone app: the same client under Node.
async function nodeClient(id, name) {
  const c = new PresenceClient({ url: srv.url, token: await devToken(srv.url, id, name), tokenIn: 'header', WebSocket });
  nodeClients.push(c);
  c.connect();
  return c;
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
  srv = await startServer(['-grace', `${GRACE_MS}ms`]);
});

after(async () => {
  for (const c of nodeClients) c.close();
  for (const { ctx, dir } of browsers) {
    await ctx.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  await srv?.stop();
});

test('two users in two windows see each other live; offline after the grace; the screenshot', { timeout: 90000 }, async (t) => {
  const browser = await launch();
  const alice = await openPage(browser);
  const bob = await openPage(browser);
  await signIn(alice, 1, 'alice');
  await signIn(bob, 2, 'bob');
  await watch(alice, '2, 3, 4, 5');
  await watch(bob, '1');
  await transportIs(alice, 'websocket');
  await transportIs(bob, 'websocket');
  assert.equal(await alice.textContent('#transport'), 'Live · WebSocket');
  await bob.waitForSelector(row(1, 'online'));
  await alice.waitForSelector(row(2, 'online'));
  // erin (5) has never been seen.
  assert.equal(await alice.textContent(row(5) + ' .detail'), 'Never seen');

  // alice goes busy; bob sees it within a second.
  await alice.selectOption('#wait-time', '15');
  const busyMs = await latency(alice, '#toggle-busy', bob, row(1, 'busy'));
  t.diagnostic(`bob saw alice busy ${busyMs} ms after her click`);
  assert.ok(busyMs < 1000, `bob saw alice busy only ${busyMs} ms after her click`);
  // Counted from the server's busy_since: the call has just begun.
  assert.equal(await bob.textContent(row(1) + ' .detail'), 'Busy for under a minute · about 15 min left');
  await alice.waitForSelector('#toggle-busy[aria-pressed="true"]');
  await textIs(alice, '#me-state', 'Busy for under a minute · about 15 min left');

  // And the other way round, with appear offline and back.
  const backMs = await latency(bob, '#toggle-busy', alice, row(2, 'busy'));
  t.diagnostic(`alice saw bob busy ${backMs} ms after his click`);
  assert.ok(backMs < 1000, `alice saw bob busy only ${backMs} ms after his click`);
  await bob.click('#toggle-busy');
  await alice.waitForSelector(row(2, 'online'), { timeout: 1000 });
  await bob.click('#toggle-hidden');
  await alice.waitForSelector(row(2, 'offline'), { timeout: 1000 });
  // bob's own answer may come after alice has heard of the change.
  await textIs(bob, '#me-state', 'Appearing offline');
  await bob.click('#toggle-hidden');
  await alice.waitForSelector(row(2, 'online'), { timeout: 1000 });

  // Two more people, on the app: carol busy for half an hour, dave online.
  const carol = await nodeClient(3, 'carol');
  await carol.setStatus({ is_busy: true, wait_time: 30 });
  await nodeClient(4, 'dave');
  await alice.waitForSelector(row(3, 'busy'));
  await alice.waitForSelector(row(4, 'online'));

  // bob closes his window: alice sees him offline once the grace is over,
  // not before.
  const t0 = Date.now();
  await bob.close();
  await alice.waitForSelector(row(2, 'offline'), { timeout: GRACE_MS + 10000 });
  const offlineMs = Date.now() - t0;
  t.diagnostic(`alice saw bob offline ${offlineMs} ms after his window closed (grace ${GRACE_MS} ms)`);
  assert.ok(offlineMs >= GRACE_MS - 100, `offline after ${offlineMs} ms, before the grace of ${GRACE_MS} ms`);
  assert.match(await alice.textContent(row(2) + ' .detail'), /^Offline · last seen just now$/);

  mkdirSync(artifacts, { recursive: true });
  const shot = path.join(artifacts, 'demo.png');
  await alice.screenshot({ path: shot });
  t.diagnostic(`screenshot: ${shot}`);
  if (process.env.UPDATE_SCREENSHOT === '1') {
    copyFileSync(shot, path.join(repoRoot, 'docs', 'demo.png'));
    t.diagnostic('docs/demo.png updated');
  }
  assert.deepEqual(alice.problems, []);
});

test('with WebSockets blocked by a proxy the page works by polling, and returns to the socket', { timeout: 90000 }, async (t) => {
  const proxy = await startHttpProxy();
  t.after(() => proxy.close());
  // A browser behind a proxy that forbids WebSockets (CONNECT gets 403)
  // but lets plain HTTP through: what many corporate networks do.
  const behind = await launch({ proxy: { server: proxy.url } });
  const frank = await openPage(behind);
  await signIn(frank, 6, 'frank');
  await watch(frank, '7');
  await transportIs(frank, 'polling');
  assert.equal(await frank.textContent('#transport'), 'Polling · REST');
  assert.ok(proxy.refused >= 2, 'the socket was tried and refused');
  assert.ok(proxy.requests > 0, 'the page itself came through the proxy');

  // gina watches frank from an open network.
  const open = await launch();
  const gina = await openPage(open);
  await signIn(gina, 7, 'gina');
  await watch(gina, '6');
  await transportIs(gina, 'websocket');
  // frank is online through his heartbeats alone.
  await gina.waitForSelector(row(6, 'online'));
  // frank sees gina within a poll (3 s).
  await frank.waitForSelector(row(7, 'online'), { timeout: 10000 });

  // Both ways: frank's change goes by REST, gina's comes by polling.
  await frank.click('#toggle-busy');
  await gina.waitForSelector(row(6, 'busy'), { timeout: 5000 });
  await gina.selectOption('#wait-time', '5');
  await gina.click('#toggle-busy');
  await frank.waitForSelector(row(7, 'busy'), { timeout: 10000 });
  assert.equal(await frank.textContent(row(7) + ' .detail'), 'Busy for under a minute · about 5 min left');

  // The proxy lets WebSockets through again: the page goes back to the
  // socket by itself (its retries back off to at most 10 s).
  proxy.blocked = false;
  await transportIs(frank, 'websocket', 30000);
  assert.ok(proxy.tunnels >= 1);
  await gina.click('#toggle-busy');
  await frank.waitForSelector(row(7, 'online'), { timeout: 1000 });
  assert.deepEqual(frank.problems, []);
  assert.deepEqual(gina.problems, []);
});

test('busy counts from busy_since; an outage greys the entries as last known; the online event and a shown tab reconnect at once', { timeout: 120000 }, async (t) => {
  const proxy = await startHttpProxy();
  proxy.blocked = false;
  t.after(() => proxy.close());
  // A browser whose network the test can take away: everything goes
  // through the proxy, WebSockets included.
  const ctx = await launch({ proxy: { server: proxy.url } });
  const first = ctx.pages()[0] ?? await ctx.newPage();
  // The page's clock runs on, but the test can move it forward: a call's
  // minutes pass without waiting for them.
  await first.clock.install();
  const holly = await openPage(ctx);
  await signIn(holly, 8, 'holly');
  const ian = await nodeClient(9, 'ian');
  await nodeClient(10, 'jay');
  await ian.setStatus({ is_busy: true, wait_time: 15 });
  await ian.subscribe([8]);
  await watch(holly, '9, 10');
  await transportIs(holly, 'websocket');
  await holly.waitForSelector(row(9, 'busy'));
  await holly.waitForSelector(row(10, 'online'));
  assert.equal(await holly.textContent(row(9) + ' .detail'), 'Busy for under a minute · about 15 min left');
  await holly.clock.fastForward('12:00');
  await textIs(holly, row(9) + ' .detail', 'Busy for 12 min · about 3 min left');
  // Past the wait time: no "about 15 min" forever.
  await holly.clock.fastForward('10:00');
  await textIs(holly, row(9) + ' .detail', 'Busy for 22 min');

  // The network goes.
  const outage = async () => {
    proxy.down = true;
    proxy.cut();
    await holly.waitForSelector(row(9) + '[data-stale="true"]');
    await holly.waitForSelector(row(10) + '[data-stale="true"]');
    // Five attempts have failed: the next waits 5–10 s (the demo's backoff is 500 ms doubling to 10 s).
    const n = proxy.connects;
    await waitFor(() => proxy.connects >= n + 5, 'five reconnect attempts', 30000);
  };
  await outage();
  await textIs(holly, row(9) + ' .detail', 'Last known · Busy for 22 min');
  await textIs(holly, row(10) + ' .detail', 'Last known · Online');
  assert.match(await holly.getAttribute(row(10) + ' .detail', 'title'), /^Not live since /);
  assert.equal(await holly.$eval(row(10), (el) => getComputedStyle(el).opacity), '0.55');
  await textIs(holly, '#transport', 'Reconnecting · last known');
  // holly goes busy meanwhile: the page keeps it and says it will send it.
  await holly.click('#toggle-busy');
  await textIs(holly, '#me-state', /^Connecting… · Busy · 15 min expected · will be sent when back online$/);
  // ian's call ends; holly cannot know yet.
  await ian.setStatus({ is_busy: false });
  mkdirSync(artifacts, { recursive: true });
  await holly.screenshot({ path: path.join(artifacts, 'demo-stale.png') });

  // The network comes back, and the browser says so. Both times are the
  // page's (its clock is ahead).
  proxy.down = false;
  const back = shownAt(holly, '#transport[data-transport="websocket"]');
  const online = holly.evaluate(() => new Promise((resolve) => {
    addEventListener('online', () => resolve(Date.now()), { once: true });
  }));
  await ctx.setOffline(true);
  await ctx.setOffline(false);
  const onlineMs = (await back) - (await online);
  t.diagnostic(`back on the socket ${onlineMs} ms after the online event (the backoff wait then: 5–10 s)`);
  assert.ok(onlineMs < 3000, `the online event did not cut the backoff short: ${onlineMs} ms`);
  await holly.waitForSelector(row(9, 'online') + '[data-stale="false"]');
  await holly.waitForSelector(row(10, 'online') + '[data-stale="false"]');
  await textIs(holly, row(10) + ' .detail', 'Online');
  // holly's tap, made while offline, reached the server.
  await waitFor(() => ian.get(8)?.is_busy, 'holly busy, as ian sees her');
  // Confirmed: nothing pending any more. (How long is counted on the
  // page's clock, which the test moved ahead.)
  await textIs(holly, '#me-state', /^Busy for [\w ]+( · about \d+ min left)?$/);

  // Again, and this time the tab comes back into view. Headless Chromium
  // never hides a page, so the test gives the page the event a tab gets
  // when it is shown again.
  await outage();
  proxy.down = false;
  const shown = shownAt(holly, '#transport[data-transport="websocket"]');
  const t1 = await holly.evaluate(() => {
    const at = Date.now();
    document.dispatchEvent(new Event('visibilitychange'));
    return at;
  });
  const shownMs = (await shown) - t1;
  t.diagnostic(`back on the socket ${shownMs} ms after the tab was shown`);
  assert.ok(shownMs < 3000, `showing the tab did not cut the backoff short: ${shownMs} ms`);
  await holly.waitForSelector(row(10) + '[data-stale="false"]');
  assert.deepEqual(holly.problems, []);
});
