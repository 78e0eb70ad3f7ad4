#!/usr/bin/env node
// Builds the web app (web/ → web/dist) with Vite and writes a .br and a .gz beside every text file,
// which the server sends as they are (src/http/web-app.ts). `--if-stale`: only when web/dist is
// missing or older than a source file (run by `npm start`, so the README's command does everything).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const web = join(import.meta.dirname, '..', 'web');
const dist = join(web, 'dist');
const built = join(dist, 'index.html');

function newest(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

// The app imports the protocol's SDK and schemas, so they count as its sources too.
const sources = [
  join(web, 'src'),
  join(web, 'index.html'),
  join(web, 'vite.config.ts'),
  join(web, '..', 'protocol', 'src'),
];

export function isStale() {
  const builtAt = statSync(built, { throwIfNoEntry: false })?.mtimeMs;
  return builtAt === undefined || Math.max(...sources.map(newest)) > builtAt;
}

function compressAll(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      compressAll(path);
      continue;
    }
    if (!/\.(js|css|html|svg|json|txt)$/.test(name)) continue;
    const body = readFileSync(path);
    if (body.length < 1024) continue;
    writeFileSync(
      `${path}.br`,
      brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
    );
    writeFileSync(`${path}.gz`, gzipSync(body, { level: 9 }));
  }
}

export async function buildWeb() {
  const { build } = await import('vite');
  await build({ configFile: join(web, 'vite.config.ts'), logLevel: 'warn' });
  compressAll(dist);
  // index.html last, so its time marks a finished build.
  writeFileSync(built, readFileSync(built));
}

if (process.argv[1] === import.meta.filename) {
  if (process.argv.includes('--if-stale') && !isStale()) process.exit(0);
  const started = Date.now();
  console.log('gigwire: building the web app (web/dist)…');
  try {
    await buildWeb();
    console.log(`gigwire: web app built in ${Date.now() - started} ms`);
  } catch (error) {
    // The server starts anyway and says at / that the build is missing.
    console.error(`gigwire: web app build failed: ${error instanceof Error ? error.message : error}`);
    process.exitCode = process.argv.includes('--if-stale') ? 0 : 1;
  }
}
