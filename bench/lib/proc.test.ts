import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CpuMeter, MainThreadMeter, mainThreadWaitNs } from './proc.js';

describe('MainThreadMeter', () => {
  it("counts a busy child's worker threads as other threads, not its main thread", async () => {
    // The child's main thread only waits; two worker threads spin: their CPU is "other threads".
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const { Worker } = require('node:worker_threads');
         const spin = 'const end = Date.now() + 30000; while (Date.now() < end) {}';
         new Worker(spin, { eval: true }); new Worker(spin, { eval: true });
         console.log('ready'); setTimeout(() => {}, 30000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await once(child.stdout, 'data');
      const pid = child.pid as number;
      const meter = new MainThreadMeter(() => [pid]);
      await new Promise((resolve) => setTimeout(resolve, 600));
      const { helperBusy, mainWaitShare } = meter.read();
      // Two spinning threads on a machine of ≥ 1 core: well above a tenth of a core between them.
      expect(helperBusy).toBeGreaterThan(0.1);
      expect(mainWaitShare).toBeGreaterThanOrEqual(0);
      expect(mainWaitShare).toBeLessThanOrEqual(1);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("does not count a busy main thread's own CPU as other threads", async () => {
    const child = spawn(
      process.execPath,
      ['-e', `console.log('ready'); const end = Date.now() + 30000; while (Date.now() < end) {}`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await once(child.stdout, 'data');
      const pid = child.pid as number;
      const meter = new MainThreadMeter(() => [pid]);
      const whole = new CpuMeter(() => [pid]);
      await new Promise((resolve) => setTimeout(resolve, 800));
      const { helperBusy } = meter.read();
      const { cpuUs, wallMs } = whole.read();
      const processBusy = cpuUs / 1000 / wallMs;
      expect(processBusy).toBeGreaterThan(0.1);
      // Nearly all of it is the main thread's spin; V8's helpers are all but idle.
      expect(helperBusy).toBeLessThan(processBusy / 2);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('reads nothing for a process that is gone', () => {
    expect(mainThreadWaitNs(2 ** 22 + 7)).toBe(0);
    const meter = new MainThreadMeter(() => [2 ** 22 + 7]);
    expect(meter.read()).toEqual({ mainWaitShare: 0, helperBusy: 0 });
  });
});
