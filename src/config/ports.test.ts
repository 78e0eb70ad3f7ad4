import { describe, expect, it } from 'vitest';
import { loadConfig } from './index.js';

const context = { cwd: '/srv/gigwire', isRoot: false, stdoutIsTty: false, pid: 4242 };

describe('PORT and WS_PORT', () => {
  it('refuses one port for both listeners of a process that runs the gateway, naming both', () => {
    for (const role of ['all', 'gateway'])
      expect(() => loadConfig({ ROLE: role, PORT: '3000', WS_PORT: '3000' }, context)).toThrow(
        'invalid configuration: WS_PORT must differ from PORT (both 3000): the WebSocket listener needs a port of its own',
      );
  });

  it('allows it where WS_PORT is not used, and 0 (any free port) for both', () => {
    for (const role of ['api', 'worker'])
      expect(loadConfig({ ROLE: role, PORT: '3000', WS_PORT: '3000' }, context).port).toBe(3000);
    expect(loadConfig({ PORT: '0', WS_PORT: '0' }, context).ws.port).toBe(0);
  });
});
