/**
 * Dependency direction of ARCHITECTURE.md §2, checked by `npm run lint`:
 *   protocol ← config ← platform ← db ← domain ← http | actors | workers ← gateway ← bin
 * plus "each library has one home" and no import cycles.
 */
const layer = (name) => `^src/${name}/`;
const above = {
  config: ['platform', 'db', 'domain', 'http', 'actors', 'workers', 'gateway', 'bin'],
  platform: ['db', 'domain', 'http', 'actors', 'workers', 'gateway', 'bin'],
  db: ['domain', 'http', 'actors', 'workers', 'gateway', 'bin'],
  domain: ['http', 'actors', 'workers', 'gateway', 'bin'],
  http: ['actors', 'workers', 'gateway', 'bin'],
  actors: ['http', 'workers', 'gateway', 'bin'],
  workers: ['http', 'actors', 'gateway', 'bin'],
  gateway: ['bin'],
};
/**
 * `pkg` may be imported at runtime only from src/<home>/ for each of `homes` (a layer or a folder
 * in one, e.g. 'domain/auth'). Type-only imports (`import type`) are allowed anywhere: they vanish
 * at compile time, and the domain takes `Kysely<Database>` / `Transaction<Database>` as types.
 */
const npmOnlyIn = (pkg, homes) => ({
  name: `only-${homes.join('-').replace(/[^a-z0-9-]/gi, '')}-import-${pkg.replace(/[^a-z0-9]/gi, '')}`,
  comment: `${pkg} has one home: src/{${homes.join(',')}}/ (ARCHITECTURE.md §2)`,
  severity: 'error',
  from: { path: '^src/', pathNot: homes.map(layer) },
  to: { dependencyTypesNot: ['type-only'], path: `node_modules/${pkg}/` },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make initialisation order fragile.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'protocol-is-standalone',
      comment: 'protocol/ is shared with browser clients: zod and msgpackr only, nothing from src/ or node:*',
      severity: 'error',
      // Tests of protocol/ run under Node and may use vitest and node:*; shipped code may not.
      from: { path: '^protocol/', pathNot: '\\.test\\.ts$' },
      to: { path: ['^src/', '^node:', 'node_modules/(?!zod/|msgpackr/)'] },
    },
    {
      name: 'protocol-no-node-builtins',
      severity: 'error',
      from: { path: '^protocol/', pathNot: '\\.test\\.ts$' },
      to: { dependencyTypes: ['core'] },
    },
    ...Object.entries(above).map(([from, forbiddenTargets]) => ({
      name: `${from}-must-not-import-upwards`,
      comment: `src/${from}/ may not import ${forbiddenTargets.join(', ')} (ARCHITECTURE.md §2)`,
      severity: 'error',
      from: { path: layer(from) },
      to: { path: forbiddenTargets.map(layer) },
    })),
    npmOnlyIn('fastify', ['http', 'gateway']),
    npmOnlyIn('@fastify', ['http', 'gateway']),
    npmOnlyIn('uWebSockets.js', ['gateway']),
    npmOnlyIn('bullmq', ['platform', 'workers']),
    npmOnlyIn('ioredis', ['platform']),
    npmOnlyIn('pg', ['db']),
    npmOnlyIn('@electric-sql/pglite', ['db']),
    // Queries (and `sql`) live in src/db/repositories; the domain imports kysely for types only.
    npmOnlyIn('kysely', ['db']),
    // Signing and JWKs are domain/auth/tokens.ts's (its unit tests beside it make keys too).
    npmOnlyIn('jose', ['domain/auth']),
    {
      name: 'src-does-not-import-tests',
      severity: 'error',
      from: { path: '^(src|protocol)/' },
      to: { path: '^(test|scripts|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    exclude: { path: ['^dist/', '^data/'] },
  },
};
