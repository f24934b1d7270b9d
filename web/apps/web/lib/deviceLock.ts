/**
 * One tab at a time uses this browser's device. Two tabs running the same Olm account would
 * each advance their own copy of its sessions and overwrite each other's saved state, so the
 * tab that holds the Web Lock `parley-device` owns the device until it closes or signs out;
 * another tab waits for it (and then loads the state the first one saved).
 */
export interface DeviceLock {
  /**
   * Resolves once this tab holds the device, with the function that lets it go. Calls
   * `onWaiting` first when another tab holds it.
   */
  acquire(onWaiting: () => void): Promise<() => void>;
}

/** The part of `navigator.locks` used here. */
export interface WebLocks {
  request(
    name: string,
    options: { ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<unknown>,
  ): Promise<unknown>;
}

export const DEVICE_LOCK = 'parley-device';

export function webDeviceLock(locks: WebLocks, name = DEVICE_LOCK): DeviceLock {
  return {
    acquire(onWaiting) {
      return new Promise((resolve, reject) => {
        let release: () => void = () => undefined;
        const held = new Promise<void>((done) => {
          release = done;
        });
        const hold = (lock: unknown) => {
          if (lock === null) return Promise.resolve(false);
          resolve(release);
          return held.then(() => true);
        };
        locks
          .request(name, { ifAvailable: true }, hold)
          .then((got) => {
            if (got) return;
            onWaiting();
            return locks.request(name, {}, hold);
          })
          .catch(reject);
      });
    },
  };
}
