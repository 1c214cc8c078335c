// Builds @presenced/client from src/ into dist/ with esbuild: each entry
// as an ES module (.js) and a CommonJS module (.cjs), and its hand-written
// declarations as .d.ts (for import) and .d.cts (for require, so that a
// TypeScript project in node16 resolution sees CommonJS types there).
//
// dist/ is committed: presenced embeds dist/presence.js and serves it at
// /presence.js, and `go run ./cmd/presenced -dev` must work without npm.
// web/test/package.test.mjs builds again into a temporary folder and fails
// when dist/ differs, so the committed files always match src/.
//
//   node build.mjs            # into dist/
//   node build.mjs OUTDIR     # elsewhere (the test's check)

import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, 'dist'));

// The entries; the bindings import the core by the package's own name,
// kept external, so that an app and its bindings share one core.
export const entries = ['presence', 'react', 'react-native'];
const external = ['@presenced/client', 'react'];

// es2020 keeps ?. and ?? as written: every browser of the last years,
// Hermes (React Native) and Node 18 run them. The core's private members
// (this._name: nothing outside the class reads them) get short names,
// which takes about 0.5 KB off an app's minified and gzipped bundle; the
// code stays formatted, for /presence.js read in a browser.
// absWorkingDir fixes the paths esbuild writes into its comments, which
// would otherwise follow the directory the build is run from (npm runs a
// workspace's script in web/client, the test runs it from web/).
const common = { absWorkingDir: path.resolve(here, '..'), bundle: true, platform: 'neutral', target: 'es2020', external, legalComments: 'none', logLevel: 'warning' };

export async function buildInto(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const version = JSON.parse(readFileSync(path.join(here, 'package.json'), 'utf8')).version;
  const banner = `// @presenced/client ${version} (MIT). Built from web/client/src by build.mjs; do not edit.`;
  for (const name of entries) {
    const entryPoints = [path.join(here, 'src', name + '.js')];
    const opts = { ...common, ...(name === 'presence' ? { mangleProps: /^_/ } : {}), entryPoints, banner: { js: banner } };
    await build({ ...opts, format: 'esm', outfile: path.join(dir, name + '.js') });
    await build({ ...opts, format: 'cjs', outfile: path.join(dir, name + '.cjs') });
    const dts = readFileSync(path.join(here, 'src', name + '.d.ts'), 'utf8');
    writeFileSync(path.join(dir, name + '.d.ts'), dts);
    writeFileSync(path.join(dir, name + '.d.cts'), dts);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildInto(out);
  if (!process.argv[2]) copyFileSync(path.join(here, '..', '..', 'LICENSE'), path.join(here, 'LICENSE'));
}
