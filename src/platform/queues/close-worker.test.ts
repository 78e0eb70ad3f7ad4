import { describe, expect, it, vi } from 'vitest';
import { closeWorker, closeWorkers } from './close-worker.js';

const log = () => ({ warn: vi.fn() });

describe('closeWorker', () => {
  it('returns when the worker closes in time, without dropping connections', async () => {
    const worker = {
      name: 'q',
      close: vi.fn(async () => undefined),
      disconnect: vi.fn(async () => undefined),
    };
    const logger = log();
    await closeWorker(worker, logger, 50);
    expect(worker.disconnect).not.toHaveBeenCalled();
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it('drops the connections of a worker whose close hangs (a blocking client stuck reconnecting)', async () => {
    const worker = {
      name: 'q',
      close: vi.fn(() => new Promise<void>(() => undefined)),
      disconnect: vi.fn(async () => undefined),
    };
    const logger = log();
    await closeWorker(worker, logger, 10);
    expect(worker.disconnect).toHaveBeenCalledTimes(1);
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  it('does not wait forever on a disconnect that hangs too', async () => {
    const never = () => new Promise<void>(() => undefined);
    const worker = { name: 'q', close: vi.fn(never), disconnect: vi.fn(never) };
    await closeWorker(worker, log(), 10);
    expect(worker.disconnect).toHaveBeenCalledTimes(1);
  });
});

describe('closeWorkers', () => {
  it('asks every worker to close at once, not each after the previous one closed', async () => {
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = { name: 'a', close: vi.fn(() => slow), disconnect: vi.fn(async () => undefined) };
    const second = {
      name: 'b',
      close: vi.fn(async () => undefined),
      disconnect: vi.fn(async () => undefined),
    };
    const closing = closeWorkers([first, second], log(), 5_000);
    // The second is already closing (it takes no new tasks) while the first finishes its task.
    expect(second.close).toHaveBeenCalledTimes(1);
    release();
    await closing;
    expect(first.disconnect).not.toHaveBeenCalled();
  });
});
