/**
 * `npm run keys:rotate`: adds a new access-token signing key and retires the current one. Every
 * process signs with the new key within a minute; the old public key stays in the JWKS until every
 * token it signed has expired (ACCESS_TOKEN_TTL_S).
 */
import { migrateToLatest } from '../db/migrate.js';
import { createTokenService } from '../domain/auth/tokens.js';
import { systemClock } from '../platform/clock.js';
import { commandLine, runOneShot } from './one-shot.js';

// No options: anything on the command line (`--help`, `--dry-run`) is refused rather than ignored,
// which would rotate the key all the same.
const args = commandLine('keys:rotate', {}, 'usage: npm run keys:rotate   (takes no arguments)\n');
if (args !== undefined) {
  await runOneShot('keys:rotate', async ({ config, db, log }) => {
    await migrateToLatest(db, log);
    const tokens = createTokenService(db, config.jwt, systemClock);
    const kid = await tokens.rotate();
    const published = (await tokens.jwks()).keys.map((key) => key.kid);
    log.info({ kid, published }, 'signing key rotated');
    process.stdout.write(`new signing key ${kid}; JWKS publishes ${published.join(', ')}\n`);
  });
}
