/**
 * Preloaded into the measured gigwire process (`node --expose-gc --import
 * ./bench/targets/gc-hook.mjs dist/src/bin/main.js`; plain JavaScript, so the server needs no
 * TypeScript loader) so the harness can force a full GC without touching
 * src/: on SIGUSR2 it runs global.gc() and writes one line `gc-done <n> <ms>` to stdout, which
 * bench/targets/gigwire.ts waits for. gigwire itself handles SIGTERM/SIGINT only.
 */
let completed = 0;

process.on('SIGUSR2', () => {
  const started = performance.now();
  if (typeof globalThis.gc === 'function') globalThis.gc();
  completed += 1;
  const ms = (performance.now() - started).toFixed(1);
  // Own line, so it never mixes with pino's JSON lines on the same stdout.
  process.stdout.write(
    `\ngc-done ${completed} ${ms}ms${typeof globalThis.gc === 'function' ? '' : ' (no --expose-gc)'}\n`,
  );
});
