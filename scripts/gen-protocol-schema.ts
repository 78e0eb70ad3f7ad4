/**
 * Writes `protocol/schema.json`, the JSON Schema (draft 2020-12) of every WebSocket frame, generated
 * from the zod schemas in protocol/src/frames.ts. `--check` writes nothing and exits 1 when the file
 * is stale, for CI. A unit test (protocol/src/frames.test.ts) holds the file to the schemas as well.
 *
 *   node --import tsx scripts/gen-protocol-schema.ts [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildProtocolSchema } from '../protocol/src/frames.js';

export { buildProtocolSchema };

/** Where the schema lives, independent of the working directory. */
export const SCHEMA_PATH = fileURLToPath(new URL('../protocol/schema.json', import.meta.url));

/** The exact text of the file: two-space JSON with a final newline. */
export function protocolSchemaText(): string {
  return `${JSON.stringify(buildProtocolSchema(), null, 2)}\n`;
}

function readCurrent(): string | undefined {
  try {
    return readFileSync(SCHEMA_PATH, 'utf8');
  } catch {
    return undefined;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const fresh = protocolSchemaText();
  if (process.argv.includes('--check')) {
    if (readCurrent() !== fresh) {
      console.error('protocol/schema.json is stale: run `node --import tsx scripts/gen-protocol-schema.ts`');
      process.exit(1);
    }
    console.log('protocol/schema.json is up to date');
  } else {
    writeFileSync(SCHEMA_PATH, fresh);
    console.log('protocol/schema.json written');
  }
}
