/**
 * The served OpenAPI document is fit for client generators: the ecosystem's own linters
 * (Redocly CLI with its `recommended` rules, Spectral with `spectral:oas`; configs in redocly.yaml
 * and .spectral.yaml) report no errors on the document a real node serves, and the properties the
 * generators depend on hold for every operation: a unique operationId, tags, an explicit security
 * requirement (bearer, or `[]` for a public route), servers, and no component that nothing uses.
 * Warnings are allowed and printed, so a reviewer sees them in the test output.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode, tempDir } from '../support/context.js';

const ROOT = resolve(import.meta.dirname, '../..');
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];
// Both tools phone home unless told not to; the suite runs offline-friendly and quiet.
const QUIET_ENV = {
  ...process.env,
  REDOCLY_TELEMETRY: 'off',
  REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
  SCARF_ANALYTICS: 'false',
  DO_NOT_TRACK: '1',
  NO_COLOR: '1',
};

type Operation = { operationId?: string; tags?: string[]; security?: Record<string, string[]>[] };
type Doc = {
  servers?: { url: string }[];
  tags?: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components?: Record<string, Record<string, unknown>>;
};

/** Runs a linter; both exit non-zero when they find errors, so the exit code alone is not a failure. */
async function run(file: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(file, args, {
      cwd: ROOT,
      env: QUIET_ENV,
      maxBuffer: 32 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    if (failed.stdout) return failed.stdout;
    throw new Error(`${file} failed: ${failed.stderr ?? String(error)}`);
  }
}

/** Prints warnings grouped by rule (count and first occurrence): visible in the run, not failures. */
function report(tool: string, warnings: string[]): void {
  const byRule = new Map<string, string[]>();
  for (const warning of warnings) {
    const rule = warning.split(' ')[0] ?? '';
    byRule.set(rule, [...(byRule.get(rule) ?? []), warning]);
  }
  const lines = [...byRule.values()].map((all) => `  ${all.length} × ${all[0]}`);
  if (lines.length > 0) console.warn(`${tool} warnings (by rule, first shown):\n${lines.join('\n')}`);
}

describe('OpenAPI document linted by Redocly and Spectral', () => {
  let test: TestNode;
  let doc: Doc;
  let file: string;

  beforeAll(async () => {
    test = await startTestNode();
    const response = await fetch(`${test.node.baseUrl}/openapi.json`);
    expect(response.status).toBe(200);
    const text = await response.text();
    doc = JSON.parse(text) as Doc;
    file = join(tempDir('openapi'), 'openapi.json');
    writeFileSync(file, text);
    writeFileSync('/tmp/oa.json', text);
  });
  afterAll(async () => {
    await test?.stop();
  });

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, operation]) => ({ key: `${method} ${path}`, operation })),
    );

  it('gives every operation a unique operationId, tags and its own security requirement; sets servers', () => {
    expect(doc.servers?.length).toBeGreaterThan(0);
    const all = operations();
    expect(all.length).toBeGreaterThan(50);
    const declaredTags = (doc.tags ?? []).map((tag) => tag.name);
    const ids = new Map<string, string>();
    for (const { key, operation } of all) {
      expect(operation.operationId, key).toMatch(/^[a-z][A-Za-z0-9]*$/);
      expect(ids.get(operation.operationId ?? ''), `${key} reuses an operationId`).toBeUndefined();
      ids.set(operation.operationId ?? '', key);
      expect(operation.tags?.length, key).toBeGreaterThan(0);
      for (const tag of operation.tags ?? []) expect(declaredTags, `${key} tag ${tag}`).toContain(tag);
      expect(Array.isArray(operation.security), key).toBe(true);
    }
  });

  it('publishes only the components the operations use (WebSocket frames live in protocol/schema.json)', () => {
    const text = JSON.stringify(doc.paths);
    const refs = new Set(
      [...text.matchAll(/"#\/components\/([^/]+)\/([^"]+)"/g)].map((m) => `${m[1]}/${m[2]}`),
    );
    // Components may reference each other: follow the references to a fixed point.
    for (let grew = true; grew; ) {
      grew = false;
      for (const ref of [...refs]) {
        const [kind, name] = ref.split('/') as [string, string];
        const inner = JSON.stringify(doc.components?.[kind]?.[name] ?? {});
        for (const m of inner.matchAll(/"#\/components\/([^/]+)\/([^"]+)"/g)) {
          const found = `${m[1]}/${m[2]}`;
          if (!refs.has(found)) {
            refs.add(found);
            grew = true;
          }
        }
      }
    }
    const security = new Set(
      operations()
        .flatMap(({ operation }) => operation.security ?? [])
        .flatMap(Object.keys),
    );
    const unused = Object.entries(doc.components ?? {}).flatMap(([kind, entries]) =>
      Object.keys(entries)
        .map((name) => `${kind}/${name}`)
        .filter(
          (ref) => !refs.has(ref) && !(kind === 'securitySchemes' && security.has(ref.split('/')[1] ?? '')),
        ),
    );
    expect(unused).toEqual([]);
    const frames = Object.keys(doc.components?.schemas ?? {}).filter((name) => /Frame(Input)?$/.test(name));
    expect(frames).toEqual([]);
  });

  it('has no Redocly (recommended) errors', async () => {
    const output = await run(bin('redocly'), ['lint', file, '--config', 'redocly.yaml', '--format', 'json']);
    const { problems } = JSON.parse(output) as {
      problems: { ruleId: string; severity: string; message: string; location?: { pointer?: string }[] }[];
    };
    const line = (p: (typeof problems)[number]) =>
      `${p.ruleId} ${p.location?.[0]?.pointer ?? ''}: ${p.message}`;
    const warnings = problems.filter((p) => p.severity !== 'error').map(line);
    report('redocly', warnings);
    expect(problems.filter((p) => p.severity === 'error').map(line)).toEqual([]);
  });

  it('has no Spectral (spectral:oas) errors', async () => {
    const output = await run(bin('spectral'), [
      'lint',
      file,
      '--ruleset',
      '.spectral.yaml',
      '--format',
      'json',
      '--quiet',
    ]);
    // Spectral prints nothing parseable when there is nothing to report in some versions.
    const results = (output.trim() === '' ? [] : JSON.parse(output)) as {
      code: string;
      severity: number;
      message: string;
      path: string[];
    }[];
    const line = (r: (typeof results)[number]) => `${r.code} ${r.path.join('.')}: ${r.message}`;
    // Severity 0 is an error; 1 a warning, 2 info, 3 hint.
    const warnings = results.filter((r) => r.severity !== 0).map(line);
    report('spectral', warnings);
    expect(results.filter((r) => r.severity === 0).map(line)).toEqual([]);
  });
});
