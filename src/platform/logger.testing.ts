/**
 * Test scaffolding of unit tests that check what is logged: a real logger (JSON lines, level info)
 * writing into memory, and the lines it wrote, parsed.
 */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from './logger.js';

export interface LoggedLine {
  readonly msg: string;
  readonly heldBack?: number;
  readonly [field: string]: unknown;
}

export function loggerToMemory(): { readonly log: Logger; readonly lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createLogger({ level: 'info', pretty: false, destination }), lines };
}
