/**
 * One node with every role (the email worker included) on its own database, sending through a real
 * SMTP test server: the frame of the mail tests that steer the server's answers.
 */
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  type LogCapture,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from './context.js';
import { type HttpClient, httpClient } from './http.js';
import { startSmtpServer, type TestSmtpServer } from './smtp.js';

export interface MailNode {
  readonly db: TestDatabase;
  readonly node: RunningNode;
  readonly smtp: TestSmtpServer;
  readonly api: HttpClient;
  readonly logs: LogCapture;
  readonly stop: () => Promise<void>;
}

export async function startMailNode(): Promise<MailNode> {
  const logs = captureLogs();
  const db = await createMigratedDatabase();
  const smtp = await startSmtpServer();
  const node = await startNode(
    testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      SMTP_URL: smtp.url,
      OUTBOX_POLL_MS: '50',
    }),
    logs.log,
    { pid: process.pid },
  );
  return {
    db,
    node,
    smtp,
    api: httpClient(node.baseUrl),
    logs,
    stop: async () => {
      await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
      await smtp.close();
      await db.drop();
    },
  };
}
