/**
 * The operator commands met for the first time (README "Development" table): a database migrated by
 * a newer gigwire is named as such, not as "corrupted migrations"; an option `migrate` or
 * `ledger:audit` does not have is refused (exit 2), never ignored (`npm run migrate -- --dry-run`
 * migrated); `admin:create` refuses a password registration and ADMIN_PASSWORD refuse (it made an
 * admin whose password was `short`); `ledger:audit` on a database not migrated yet says so instead of
 * `relation "ledger_transactions" does not exist`.
 *
 * The commands run from the run's compiled build (test/support/child-build.ts: the same code, without
 * tsx compiling it at each start); firsttry-review16-start-errors runs `migrate` through tsx as typed.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createEmptyDatabase, createMigratedDatabase, type TestDatabase } from '../support/context.js';
import { commandArguments } from '../support/spawn.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createMigratedDatabase();
});
afterAll(async () => {
  await database?.drop();
});

async function query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** `npm run <name> -- …args` as the package script runs it, with only this environment. */
async function command(name: string, args: string[], env: Record<string, string> = {}) {
  return promisify(execFile)(process.execPath, [...commandArguments(`src/bin/${name}.ts`), ...args], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      DATABASE_URL: database.url,
      STARTUP_WAIT_S: '0',
      LOG_LEVEL: 'fatal',
      ...env,
    },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}

describe.concurrent('operator commands', () => {
  it('migrate names a database migrated by a newer version, in one line, exit 1', async ({ expect }) => {
    const newer = await createMigratedDatabase();
    try {
      const client = new pg.Client({ connectionString: newer.url });
      await client.connect();
      await client.query(
        `insert into kysely_migration (name, timestamp) values ('9999_from_the_future', now()::text)`,
      );
      await client.end();
      const result = await command('migrate', [], { DATABASE_URL: newer.url });
      expect({ code: result.code, lines: result.stderr.trim().split('\n') }).toEqual({
        code: 1,
        lines: [
          expect.stringMatching(
            /^gigwire: migrate failed: the database was migrated by a newer version of gigwire \(it has migration 9999_from_the_future; this version knows up to \d{4}_\w+\): run that version/,
          ),
        ],
      });
    } finally {
      await newer.drop();
    }
  });

  it('migrate refuses an option it does not have, and migrates nothing', async ({ expect }) => {
    const empty = await query<{ n: number }>('select count(*)::int as n from kysely_migration');
    const result = await command('migrate', ['--dry-run']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 2,
      stderr: "gigwire: migrate: Unknown option '--dry-run'\nusage: npm run migrate   (takes no arguments)\n",
    });
    expect(await query('select count(*)::int as n from kysely_migration')).toEqual(empty);
  });

  it('ledger:audit refuses an option it does not have', async ({ expect }) => {
    const result = await command('ledger-audit', ['--fix']);
    expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({
      code: 2,
      stdout: '',
      stderr:
        "gigwire: ledger:audit: Unknown option '--fix'\nusage: npm run ledger:audit   (takes no arguments)\n",
    });
  });

  it('ledger:audit says a database not migrated yet needs npm run migrate, in one line', async ({
    expect,
  }) => {
    const empty = await createEmptyDatabase();
    try {
      const result = await command('ledger-audit', [], { DATABASE_URL: empty.url });
      expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({
        code: 1,
        stdout: '',
        stderr: expect.stringMatching(
          /^gigwire: ledger-audit failed: the database is not migrated to this version \(\d+ pending, from 0001_installation\): run npm run migrate first\n$/,
        ),
      });
    } finally {
      await empty.drop();
    }
  });

  it('admin:create refuses a password shorter than 10 characters, without quoting it', async ({ expect }) => {
    const result = await command('admin-create', ['--email', 'short@example.com', '--password', 'hunter2']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 2,
      stderr: 'gigwire: admin:create: --password: must be at least 10 characters\n',
    });
    expect(await query('select id from users where email = $1', ['short@example.com'])).toEqual([]);
  });
});
