/**
 * What both comparison peers share: the port from argv (`node peer.ts <port>`, 0 = any free port),
 * the ready line the orchestrator waits for (`ready port=<n>`), and a forced GC on SIGUSR2 (when
 * started with --expose-gc) acknowledged by a `gc-done` line, so RSS can be read after GC.
 */

export function portFromArgv(): number {
  const raw = process.argv[2] ?? '0';
  const port = Number.parseInt(raw, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${raw}`);
  return port;
}

export function announceReady(port: number): void {
  process.stdout.write(`ready port=${port}\n`);
}

export function handleGcSignal(): void {
  process.on('SIGUSR2', () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    process.stdout.write(gc === undefined ? 'gc-done unavailable\n' : 'gc-done\n');
  });
}

export function exitOnTerm(close: () => void): void {
  const stop = () => {
    close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
