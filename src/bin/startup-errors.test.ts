import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { inDataDir, listening, withDataDir } from './startup-errors.js';

describe('startup errors', () => {
  it('names the listen settings only for a failure to listen', async () => {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const second = createServer();
      await expect(
        listening(
          `HOST 127.0.0.1 PORT ${port}`,
          () =>
            new Promise((ok, fail) => {
              second.once('error', fail);
              second.listen(port, '127.0.0.1', () => ok(undefined));
            }),
        ),
      ).rejects.toThrow(new RegExp(`^cannot listen on HOST 127\\.0\\.0\\.1 PORT ${port}: listen EADDRINUSE`));
    } finally {
      server.close();
    }
    // A plugin failing while the server gets ready is not the port's fault.
    const pluginError = new Error('plugin refused');
    await expect(listening('HOST h PORT 1', () => Promise.reject(pluginError))).rejects.toBe(pluginError);
  });

  it('names DATA_DIR only for file-system failures, describing PGlite errno objects once', async () => {
    const other = new Error('redis-server exited during start (code 1)');
    await expect(inDataDir('/d', '/d/redis', () => Promise.reject(other))).rejects.toBe(other);
    const pglite = new Error('Aborted()', { cause: { name: 'ErrnoError', errno: 51 } });
    const wrapped = await inDataDir('/d', '/d/pglite', () => Promise.reject(pglite)).catch((e: Error) => e);
    expect(wrapped).toBeInstanceOf(Error);
    expect((wrapped as Error).message).toBe(
      'DATA_DIR /d is not usable: Aborted(): no space left on device under /d/pglite (ENOSPC)',
    );
    // No plain-object cause left for main.ts to describe a second time.
    expect((wrapped as Error).cause).toBeUndefined();
    expect(() =>
      withDataDir('/etc/passwd', () => {
        throw Object.assign(new Error("EEXIST: file already exists, mkdir '/etc/passwd'"), {
          code: 'EEXIST',
          path: '/etc/passwd',
        });
      }),
    ).toThrow("DATA_DIR /etc/passwd is not usable: EEXIST: file already exists, mkdir '/etc/passwd'");
  });
});
