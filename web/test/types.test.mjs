// The declarations against the code, for each of @presenced/client's
// entries: every export is declared, and an app's typical use type-checks
// under tsc --strict (test/types/usage.ts).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as presence from '@presenced/client';
import * as react from '@presenced/client/react';
import * as reactNative from '@presenced/client/react-native';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, '..', 'client', 'src');

for (const [name, mod] of [['presence', presence], ['react', react], ['react-native', reactNative]]) {
  test(`${name}.d.ts declares exactly what ${name}.js exports`, () => {
    const dts = readFileSync(path.join(src, name + '.d.ts'), 'utf8');
    const declared = [...dts.matchAll(/^export declare (?:class|function|const) (\w+)/gm)].map((m) => m[1]).sort();
    assert.deepEqual(declared, Object.keys(mod).sort());
  });
}

test('every timing is declared in presence.d.ts and named in the README\'s JavaScript client section', () => {
  const dts = readFileSync(path.join(src, 'presence.d.ts'), 'utf8');
  const timings = dts.slice(dts.indexOf('export interface Timings'), dts.indexOf('export declare const defaults'));
  const readme = readFileSync(path.join(here, '..', '..', 'README.md'), 'utf8');
  const start = readme.indexOf('\n## JavaScript client\n');
  assert.ok(start >= 0, 'the README has no "## JavaScript client" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  for (const k of Object.keys(presence.defaults)) {
    assert.match(timings, new RegExp(`\\b${k}\\?: number;`), `presence.d.ts's Timings lacks ${k}`);
    assert.match(section, new RegExp(`\\b${k}\\b`), `the README's JavaScript client section does not name ${k}`);
  }
  for (const option of ['deviceId', 'storage', 'network', 'tokenIn', 'wsUrl']) {
    assert.ok(section.includes('`' + option + '`'), `the README does not name the option ${option}`);
  }
  const events = dts.slice(dts.indexOf('export interface PresenceEvents'));
  for (const [, name] of events.slice(0, events.indexOf('\n}')).matchAll(/^  (\w+): \(/gm)) {
    assert.ok(section.includes('`' + name + ' ('), `the README does not describe the event ${name}`);
  }
});

test('an app\'s use of the client type-checks under tsc --strict', { timeout: 120000 }, () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext',
      '--moduleResolution', 'nodenext', '--lib', 'es2022,dom', '--skipLibCheck', path.join(here, 'types', 'usage.ts')],
    { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    assert.fail(`tsc found errors:\n${err.stdout}${err.stderr}`);
  }
});
