/**
 * The web app behind deploy/nginx.conf (the compose topology, `npm run cluster`): its CSP names
 * the WebSocket origin from the Host it is served under. nginx must pass the Host with its port
 * (`localhost:8080`), or the page allows `ws://localhost` (port 80) and a browser that does not
 * count ws: as 'self' (Safari) refuses the app's own socket at ws://localhost:8080/ws.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../support/cluster.js';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  tempDir,
  uniqueRedisPrefix,
} from '../support/context.js';

let db: TestDatabase;
let cluster: Cluster | undefined;

beforeAll(async () => {
  db = await createMigratedDatabase();
  cluster = await startCluster({
    databaseUrl: db.url,
    redisUrl: sharedRedisUrl(),
    redisPrefix: uniqueRedisPrefix(),
    gateways: 1,
    dir: tempDir('firsttry-nginx-host'),
  });
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  await db?.drop();
});

describe('deploy/nginx.conf in front of the web app', () => {
  it("passes the browser's Host with its port, so the CSP allows the app's own WebSocket", async () => {
    const origin = cluster?.origin ?? '';
    const response = await fetch(`${origin}/`);
    await response.arrayBuffer();
    const csp = response.headers.get('content-security-policy') ?? '';
    const connectSrc = csp.split(';').find((directive) => directive.trim().startsWith('connect-src'));
    expect(connectSrc?.trim()).toBe(`connect-src 'self' ${origin.replace(/^http/, 'ws')}`);
  });
});
