// @presenced/client as a package: the committed build matches the sources,
// package.json says what the README says, the core stays small, and the
// packed tarball installs into fresh projects (ES module, CommonJS,
// TypeScript in node16 and in bundler resolution) that import it, run the
// README's Node example against a real presenced, and type-check the
// README's browser, React and React Native examples.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

import * as core from '@presenced/client';
import { buildInto, entries } from '../client/build.mjs';
import { devToken, restStatus, startServer } from './helpers.mjs';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.join(here, '..');
const pkgDir = path.join(web, 'client');
const repo = path.join(web, '..');
const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');
// The versions the fresh projects install are the ones the tests pin.
const pins = JSON.parse(readFileSync(path.join(web, 'package.json'), 'utf8')).devDependencies;
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

// section returns the README's text under heading, up to the next heading.
function section(heading) {
  const start = readme.indexOf('\n' + heading + '\n');
  assert.ok(start >= 0, `the README has no "${heading}" section`);
  const rest = readme.slice(start + heading.length + 2);
  const end = rest.search(/\n#{1,4} /);
  return end < 0 ? rest : rest.slice(0, end);
}

// codeBlock returns the first fenced block of lang under heading.
function codeBlock(heading, lang) {
  const m = section(heading).match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```'));
  assert.ok(m, `the README's "${heading}" has no \`\`\`${lang} block`);
  return m[1];
}

const tmp = mkdtempSync(path.join(tmpdir(), 'presenced-package-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('dist/ is what build.mjs makes of src/ now, and LICENSE is the repository\'s', async () => {
  const fresh = path.join(tmp, 'dist');
  await buildInto(fresh);
  const names = readdirSync(fresh).sort();
  assert.deepEqual(readdirSync(path.join(pkgDir, 'dist')).sort(), names, 'dist/ holds other files than a build makes');
  for (const name of names) {
    assert.ok(readFileSync(path.join(pkgDir, 'dist', name)).equals(readFileSync(path.join(fresh, name))),
      `dist/${name} is out of date with src/: run npm run build in web/ and commit dist/`);
  }
  assert.equal(readFileSync(path.join(pkgDir, 'LICENSE'), 'utf8'), readFileSync(path.join(repo, 'LICENSE'), 'utf8'));
});

test('package.json: semver, the protocol, MIT, ESM, CommonJS and types for each entry, no runtime dependency', () => {
  assert.equal(pkg.name, '@presenced/client');
  assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
  assert.equal(pkg.presenced.protocol, core.PROTOCOL_VERSION);
  assert.equal(pkg.sideEffects, false);
  assert.equal(pkg.type, 'module');
  assert.equal(pkg['react-native'], './dist/presence.js');
  assert.equal(pkg.dependencies, undefined, 'the client has no runtime dependency');
  assert.deepEqual(Object.keys(pkg.peerDependencies), ['react']);
  assert.equal(pkg.peerDependenciesMeta.react.optional, true);
  for (const name of entries) {
    const key = name === 'presence' ? '.' : './' + name;
    assert.deepEqual(pkg.exports[key], {
      import: { types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` },
      require: { types: `./dist/${name}.d.cts`, default: `./dist/${name}.cjs` },
    }, key);
  }
  // The licence: one file, named by every package.json and the README.
  assert.match(readFileSync(path.join(repo, 'LICENSE'), 'utf8'), /^MIT License\n/);
  for (const p of ['web/client/package.json', 'web/package.json', 'transport/testdata/openapi-lint/package.json']) {
    assert.equal(JSON.parse(readFileSync(path.join(repo, p), 'utf8')).license, 'MIT', p);
  }
  const intro = section('## JavaScript client');
  assert.ok(intro.includes('MIT') && intro.includes('`LICENSE`'), 'the README does not name the licence');
  assert.ok(intro.includes(`Version ${pkg.version} speaks **protocol ${pkg.presenced.protocol}**`), 'the README names another version or protocol');
  assert.match(readFileSync(path.join(pkgDir, 'CHANGELOG.md'), 'utf8'), new RegExp(`\\n## ${pkg.version.replace(/\./g, '\\.')}\\n`), 'CHANGELOG.md has no entry for this version');
});

test('measured: the core is under 8 KB minified and gzipped, as the README says', async () => {
  const sizes = {};
  for (const name of entries) {
    const out = await build({
      entryPoints: [path.join(pkgDir, 'dist', name + '.js')], bundle: true, minify: true, format: 'esm', write: false,
      external: ['react', '@presenced/client'], logLevel: 'silent',
    });
    sizes[name] = gzipSync(out.outputFiles[0].contents, { level: 9 }).length;
  }
  const said = section('### The package').match(/the core is \*\*(\d+\.\d) KB\*\* minified and gzipped \(([\d,]+) bytes\)/);
  assert.ok(said, 'the README\'s "The package" does not give the core\'s size');
  const kb = (sizes.presence / 1024).toFixed(1);
  console.log(`min+gzip bytes: ${JSON.stringify(sizes)}; the core ${kb} KB`);
  assert.ok(sizes.presence < 8 * 1024, `the core is ${sizes.presence} bytes minified and gzipped: over 8 KB`);
  assert.equal(said[1], kb, `the README says ${said[1]} KB; it is ${kb} KB (${sizes.presence} bytes)`);
});

describe('the packed tarball in fresh projects', () => {
  let srv;
  let tarball;
  before(async () => {
    srv = await startServer();
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: pkgDir });
    const [info] = JSON.parse(stdout);
    tarball = path.join(tmp, info.filename);
    const files = info.files.map((f) => f.path).sort();
    const expected = ['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json', ...entries.flatMap((n) =>
      ['.js', '.cjs', '.d.ts', '.d.cts'].map((ext) => `dist/${n}${ext}`))].sort();
    assert.deepEqual(files, expected, 'the tarball holds other files');
  });
  after(() => srv?.stop());

  // project makes a folder with package.json and files, and installs the
  // tarball and the pinned extras from npm (or its cache).
  async function project(name, manifest, files, extras) {
    const dir = path.join(tmp, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'fresh-' + name, private: true, ...manifest }, null, 2));
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    }
    const deps = extras.map((d) => `${d}@${pins[d]}`);
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...deps], { cwd: dir });
    return dir;
  }

  const typecheck = async (dir) => {
    try {
      await run(process.execPath, [tsc, '-p', dir], { cwd: dir });
    } catch (err) {
      assert.fail(`tsc -p ${path.basename(dir)} found errors:\n${err.stdout}${err.stderr}`);
    }
  };

  test('ES module: the README\'s Node example runs with ws against a real presenced; every entry imports', { timeout: 120000 }, async () => {
    const example = codeBlock('### In Node', 'js').replaceAll("'https://presence.example.com'", JSON.stringify(srv.url));
    const dir = await project('esm', { type: 'module' }, {
      'app.mjs': example + "\nconsole.log('transport ' + client.transport);\nclient.close();\n",
      'entries.mjs': [
        "import * as core from '@presenced/client';",
        "import * as react from '@presenced/client/react';",
        "import * as rn from '@presenced/client/react-native';",
        'console.log(JSON.stringify({ core: Object.keys(core).sort(), react: Object.keys(react).sort(), rn: Object.keys(rn) }));',
      ].join('\n'),
    }, ['ws', 'react']);
    const token = await devToken(srv.url, 61, 'esm');
    const { stdout } = await run(process.execPath, ['app.mjs'], { cwd: dir, env: { ...process.env, PRESENCE_TOKEN: token }, timeout: 30000 });
    assert.match(stdout, /^transport websocket$/m);
    const held = await restStatus(srv.url, token);
    assert.equal(held.is_busy, true);
    assert.equal(held.wait_time, 15);
    const got = JSON.parse((await run(process.execPath, ['entries.mjs'], { cwd: dir })).stdout);
    assert.deepEqual(got.core, Object.keys(core).sort());
    assert.deepEqual(got.react, ['PresenceProvider', 'useConnectionState', 'useMyStatus', 'usePresence', 'usePresenceClient', 'watchCount']);
    assert.deepEqual(got.rn, ['bindReactNative']);
  });

  test('CommonJS: require() of every entry, and the client works with ws', { timeout: 120000 }, async () => {
    const dir = await project('cjs', {}, {
      'app.js': `
const WebSocket = require('ws');
const { PresenceClient, PROTOCOL_VERSION } = require('@presenced/client');
const { usePresence, PresenceProvider } = require('@presenced/client/react');
const { bindReactNative } = require('@presenced/client/react-native');
const { version } = require('@presenced/client/package.json');
const client = new PresenceClient({ url: ${JSON.stringify(srv.url)}, token: process.env.PRESENCE_TOKEN, WebSocket, tokenIn: 'header' });
client.connect();
client.setStatus({ is_busy: true, wait_time: 7 }).then((st) => {
  console.log(JSON.stringify({ version, PROTOCOL_VERSION, transport: client.transport, wait: st.wait_time,
    hooks: typeof usePresence + typeof PresenceProvider, rn: typeof bindReactNative }));
  client.close();
});
`,
    }, ['ws', 'react']);
    const token = await devToken(srv.url, 62, 'cjs');
    const { stdout } = await run(process.execPath, ['app.js'], { cwd: dir, env: { ...process.env, PRESENCE_TOKEN: token }, timeout: 30000 });
    assert.deepEqual(JSON.parse(stdout), {
      version: pkg.version, PROTOCOL_VERSION: 1, transport: 'websocket', wait: 7, hooks: 'functionfunction', rn: 'function',
    });
  });

  test('TypeScript, node16 resolution: a CommonJS file and an ES module file type-check', { timeout: 120000 }, async () => {
    const use = `
import { PresenceClient, type Presence, type TokenRequest } from '@presenced/client';
import { usePresence, useMyStatus, useConnectionState, PresenceProvider } from '@presenced/client/react';
import { bindReactNative } from '@presenced/client/react-native';

const client = new PresenceClient({ url: 'https://presence.example.com', token: (r: TokenRequest) => (r.forceRefresh ? 'new' : 'cached') });
const off: () => void = bindReactNative(client, { connect: false });
off();
export const hooks = [usePresence, useMyStatus, useConnectionState, PresenceProvider];
export function wait(p: Presence): number | null { return p.wait_time; }
`;
    const dir = await project('ts-node16', {}, {
      'tsconfig.json': JSON.stringify({
        compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, noEmit: true, lib: ['es2022', 'dom'], types: [] },
        include: ['*.ts', '*.mts'],
      }),
      'app.ts': use, // CommonJS: this package.json has no "type"
      'app-esm.mts': use,
      'bad.ts': "import { PresenceClient } from '@presenced/client';\n// @ts-expect-error: url is required\nnew PresenceClient({ token: 't' });\n",
    }, ['@types/react']);
    await typecheck(dir);
  });

  test('TypeScript, bundler resolution: the README\'s browser, React and React Native examples type-check', { timeout: 120000 }, async () => {
    const dir = await project('ts-bundler', { type: 'module' }, {
      'tsconfig.json': JSON.stringify({
        compilerOptions: {
          module: 'esnext', moduleResolution: 'bundler', target: 'es2022', strict: true, noEmit: true, jsx: 'react-jsx',
          lib: ['es2022', 'dom'], types: [],
        },
        include: ['*.ts', '*.tsx'],
      }),
      // What the examples take from elsewhere: the app's own sign-in, and
      // the shapes of the React Native modules they import.
      'env.d.ts': `
declare const auth: { getAccessToken(options?: { forceRefresh?: boolean }): Promise<string> };
declare function fetchToken(): Promise<string>;
declare module 'react-native' {
  type AppStateStatus = 'active' | 'background' | 'inactive' | 'unknown' | 'extension';
  export const AppState: {
    currentState: AppStateStatus;
    addEventListener(type: 'change' | 'memoryWarning' | 'blur' | 'focus', listener: (state: AppStateStatus) => void): { remove(): void };
  };
}
declare module '@react-native-community/netinfo' {
  export interface NetInfoState { type: string; isConnected: boolean | null; isInternetReachable: boolean | null | undefined }
  const NetInfo: { addEventListener(listener: (state: NetInfoState) => void): () => void; fetch(): Promise<NetInfoState> };
  export default NetInfo;
}
declare module '@react-native-async-storage/async-storage' {
  const AsyncStorage: { getItem(key: string): Promise<string | null>; setItem(key: string, value: string): Promise<void> };
  export default AsyncStorage;
}
`,
      'browser.ts': codeBlock('### In a browser', 'js') + '\nexport {};\n',
      'react-app.tsx': codeBlock('### With React', 'tsx'),
      'native-app.tsx': codeBlock('### In React Native', 'tsx'),
    }, ['@types/react']);
    await typecheck(dir);
  });
});
