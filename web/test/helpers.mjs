// Test helpers: a real presenced process, dev tokens, a TCP proxy that can
// refuse, cut or freeze connections, and waiting for conditions with a
// deadline. Nothing here stands in for the server.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let built;

// presencedBinary returns the server binary: $PRESENCED_BIN (the Go test
// builds it once for every node test file), or one built here.
export function presencedBinary() {
  if (process.env.PRESENCED_BIN) return process.env.PRESENCED_BIN;
  if (!built) {
    const dir = mkdtempSync(path.join(tmpdir(), 'presenced-bin-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    built = path.join(dir, 'presenced');
    execFileSync('go', ['build', '-o', built, './cmd/presenced'], { cwd: repoRoot, stdio: 'inherit' });
  }
  return built;
}

// Servers still running when this process ends are killed with it.
const live = new Set();
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

// startServer runs presenced in dev mode on a free loopback port (or addr)
// and resolves once it logs that it listens.
export function startServer(args = [], { addr = '127.0.0.1:0' } = {}) {
  const proc = spawn(presencedBinary(), ['-dev', '-addr', addr, '-log-level', 'info', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PRESENCE_LOG_LEVEL: '' },
  });
  live.add(proc);
  const logs = [];
  let exited = false;
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
    exited = true;
    live.delete(proc);
    resolve({ code, signal });
  }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('presenced did not start within 20 s:\n' + logs.join('\n')));
    }, 20000);
    let buf = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        let rec;
        try { rec = JSON.parse(line); } catch { continue; }
        if (rec.msg === 'listening') {
          clearTimeout(timer);
          const url = 'http://' + rec.addr;
          resolve({
            url,
            addr: rec.addr,
            logs,
            // stop sends SIGTERM (a graceful shutdown: sockets get 1001)
            // and waits for the process to end.
            async stop() {
              if (!exited) proc.kill('SIGTERM');
              const t = setTimeout(() => proc.kill('SIGKILL'), 20000);
              const r = await exit;
              clearTimeout(t);
              return r;
            },
          });
        }
      }
    });
    exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`presenced exited (${code ?? signal}) before listening:\n${logs.join('\n')}${buf}`));
    });
  });
}

// devToken signs in through the dev endpoint.
export async function devToken(url, userId, username) {
  const res = await fetch(url + '/dev/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user_id: userId, username }),
  });
  if (!res.ok) throw new Error(`POST /dev/token: ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}

// startProxy listens on a loopback port and forwards TCP to target
// (host:port). mode 'refuse' closes new connections at once, as a proxy
// that blocks WebSockets does; mode 'blackhole' accepts them and forwards
// nothing, as a network that lost its route does; mode 'mute' forwards the
// client's bytes and the server's answer to the handshake, and nothing of
// the server's after it, as a proxy that lets a WebSocket upgrade through
// and then swallows its frames does; freeze() stops the bytes
// of the open connections without closing them, as a network that vanished
// does.
// requests() lists the HTTP request heads that clients sent through it
// (REST requests and WebSocket handshakes), in the order they came.
export function startProxy(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const open = new Set();
  const sent = []; // per forwarded connection: what the client sent, as latin1 text (capped)
  const proxy = {
    mode: 'forward',
    connections: 0, // connections accepted, refused ones included
    attempts: [], // time (ms) of each accepted connection
    port: 0,
    requests() {
      const out = [];
      for (const rec of sent) {
        for (const m of rec.text.matchAll(/(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP\/1\.1\r\n([\s\S]*?)\r\n\r\n/g)) {
          const headers = {};
          for (const line of m[3].split('\r\n')) {
            const i = line.indexOf(':');
            if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
          }
          out.push({ at: rec.at, method: m[1], path: m[2], headers });
        }
      }
      return out;
    },
    freeze() {
      for (const pair of open) {
        for (const s of pair) {
          s.unpipe();
          s.pause();
        }
      }
    },
    // cut closes every open connection at once (a reset, no close frame).
    cut() {
      for (const [a, b] of open) {
        a.destroy();
        b.destroy();
      }
      open.clear();
    },
    close() {
      proxy.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
  const server = net.createServer((client) => {
    proxy.connections++;
    proxy.attempts.push(performance.now());
    if (proxy.mode === 'refuse') {
      client.destroy();
      return;
    }
    if (proxy.mode === 'blackhole') {
      const pair = [client, client];
      open.add(pair);
      client.on('error', () => {}).on('close', () => open.delete(pair));
      return;
    }
    const upstream = net.connect(port, host);
    const rec = { at: performance.now(), text: '' };
    sent.push(rec);
    client.on('data', (chunk) => {
      if (rec.text.length < 65536) rec.text += chunk.toString('latin1');
    });
    const pair = [client, upstream];
    open.add(pair);
    const end = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    if (proxy.mode === 'mute') {
      let head = '';
      upstream.on('data', (chunk) => {
        if (head === null) return;
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        client.write(Buffer.from(head.slice(0, end + 4), 'latin1'));
        head = null;
      });
    } else {
      upstream.pipe(client);
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    proxy.port = server.address().port;
    resolve(proxy);
  }));
}

// waitFor polls cond every 20 ms until it returns a truthy value, which it
// resolves with, or fails after timeoutMs with what.
export async function waitFor(cond, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// nextEvent resolves with the arguments of the first event of client that
// satisfies pred, or fails after timeoutMs.
export function nextEvent(client, event, pred = () => true, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a ${event} event`));
    }, timeoutMs);
    const off = client.on(event, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

// sleep is for the few tests that must show that something does NOT
// happen within a span; never for waiting on something that does.
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// startHttpProxy is an HTTP proxy as browsers use one: it forwards plain
// requests, and tunnels CONNECT (which Chromium uses for every WebSocket
// through a proxy) unless blocked, when it answers 403 as a proxy that
// forbids WebSockets does. With down set it is a network that is gone:
// every request and tunnel is cut without an answer (connects counts the
// tunnels asked for meanwhile); cut() ends what is open.
export function startHttpProxy() {
  const sockets = new Set();
  const proxy = { blocked: true, down: false, tunnels: 0, refused: 0, requests: 0, connects: 0, port: 0 };
  proxy.cut = () => {
    for (const s of sockets) s.destroy();
  };
  const server = http.createServer((req, res) => {
    if (proxy.down) {
      req.socket.destroy();
      return;
    }
    proxy.requests++;
    let u;
    try {
      u = new URL(req.url);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    const up = http.request({ host: u.hostname, port: u.port, method: req.method, path: u.pathname + u.search, headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.on('error', () => res.destroy());
      ur.pipe(res);
    });
    // A connection reset on either side ends the exchange; none of them
    // may throw out of the test (the server resets a connection that it
    // closes with bytes unread).
    up.on('error', () => { if (res.headersSent) res.destroy(); else res.writeHead(502).end(); });
    req.on('error', () => up.destroy());
    res.on('error', () => up.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req, socket, head) => {
    proxy.connects++;
    // The tunnel's socket is the handler's from here: net/http no longer
    // listens for its errors.
    socket.on('error', () => socket.destroy());
    if (proxy.down) {
      socket.destroy();
      return;
    }
    const [host, port] = [req.url.slice(0, req.url.lastIndexOf(':')), Number(req.url.slice(req.url.lastIndexOf(':') + 1))];
    // Only the loopback server is ever a destination: nothing leaves the machine.
    if (proxy.blocked || (host !== '127.0.0.1' && host !== 'localhost')) {
      proxy.refused++;
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    proxy.tunnels++;
    const up = net.connect(port, host, () => {
      sockets.add(up);
      up.on('close', () => sockets.delete(up));
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    const end = () => { socket.destroy(); up.destroy(); };
    up.on('error', end).on('close', end);
    socket.on('error', end).on('close', end);
  });
  proxy.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  };
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    proxy.port = server.address().port;
    proxy.url = 'http://127.0.0.1:' + proxy.port;
    resolve(proxy);
  }));
}

// signToken makes an HS256 JWT, as an app's auth server would.
export function signToken(secret, claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(claims);
  return body + '.' + createHmac('sha256', secret).update(body).digest('base64url');
}

// mulberry32 is a small seeded random source, so that a test's random
// sequence is the same on every run and a failure can be replayed.
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// restStatus reads the signed-in user's status straight from the server,
// as the test's own witness (not through the client under test).
export async function restStatus(url, token) {
  const res = await fetch(url + '/users/me/status', { headers: { Authorization: 'Bearer ' + token } });
  if (!res.ok) throw new Error(`GET /users/me/status: ${res.status} ${await res.text()}`);
  return res.json();
}
