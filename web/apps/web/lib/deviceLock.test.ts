import { describe, expect, it } from 'vitest';
import { webDeviceLock, type WebLocks } from './deviceLock';

/** Web Locks as the browser has them: exclusive, granted in order, `ifAvailable` answers null. */
function fakeLocks(): WebLocks {
  const held = new Set<string>();
  const queues = new Map<string, (() => void)[]>();
  return {
    async request(name, options, callback) {
      if (held.has(name)) {
        if (options.ifAvailable) return callback(null);
        await new Promise<void>((grant) => {
          const queue = queues.get(name) ?? [];
          queue.push(grant);
          queues.set(name, queue);
        });
      }
      held.add(name);
      try {
        return await callback({ name });
      } finally {
        held.delete(name);
        queues.get(name)?.shift()?.();
      }
    },
  };
}

describe('webDeviceLock', () => {
  it('gives the device to one tab; the next one waits, says so, and gets it on release', async () => {
    const locks = fakeLocks();
    const first = webDeviceLock(locks);
    const second = webDeviceLock(locks);
    let firstWaited = false;
    const releaseFirst = await first.acquire(() => {
      firstWaited = true;
    });
    expect(firstWaited).toBe(false);
    let secondWaited = false;
    let secondHolds = false;
    const secondAcquired = second
      .acquire(() => {
        secondWaited = true;
      })
      .then((release) => {
        secondHolds = true;
        return release;
      });
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(secondWaited).toBe(true);
    expect(secondHolds).toBe(false);
    releaseFirst();
    const releaseSecond = await secondAcquired;
    expect(secondHolds).toBe(true);
    releaseSecond();
  });
});
