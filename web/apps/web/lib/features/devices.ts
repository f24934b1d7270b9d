/**
 * Your devices (`GET /keys/devices`: one per login session) and removing one (`DELETE
 * /keys/devices/{id}` signs it out and deletes its keys), and safety numbers: the digits two
 * users compare to know no one sits between them (`docs/e2ee.md`, "Safety numbers"). They are
 * computed by the crypto core over both users' currently listed devices, so the listings are
 * read again first (through `lib/e2ee.ts`, which checks them into the trust store).
 */
import { ApiRequestError, call } from './apiError';
import { myId, type FeatureContext } from './context';
import type { OwnDevice } from './types';

export const SAFETY_NUMBER_DIGITS = 60;
export const SAFETY_NUMBER_GROUP = 5;

/** This device first, then the most recently seen. */
export function sortDevices(devices: OwnDevice[]): OwnDevice[] {
  return [...devices].sort(
    (a, b) =>
      Number(b.current) - Number(a.current) ||
      Date.parse(b.last_seen_at) - Date.parse(a.last_seen_at) ||
      a.device_id.localeCompare(b.device_id),
  );
}

/** A device's name as shown (devices may have none). */
export function deviceName(device: Pick<OwnDevice, 'display_name' | 'device_id'>): string {
  const name = device.display_name.trim();
  // The end of the id: UUIDv7s made close together share their first (time) digits.
  return name || `Device ${device.device_id.slice(-8)}`;
}

/** The start of the device's signing key, as the CLI shows it: tells same-named devices apart. */
export function keyFingerprint(device: Pick<OwnDevice, 'identity_keys'>): string {
  return device.identity_keys.ed25519.slice(0, 8);
}

/** "just now", "5 minutes ago", "3 hours ago", "2 days ago", else the date. */
export function formatLastSeen(iso: string, now: number): string {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return 'unknown';
  const minutes = Math.floor((now - at) / 60_000);
  if (minutes < 2) return 'just now';
  if (minutes < 60) return `${minutes} minutes ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return hours === 1 ? '1 hour ago' : `${hours} hours ago`;
  const days = Math.floor(hours / 24);
  if (days < 7) return days === 1 ? 'yesterday' : `${days} days ago`;
  return new Date(at).toLocaleDateString();
}

/**
 * The 60 digits as 12 groups of 5. Throws on anything else, so a wrong value is never shown as
 * something to compare.
 */
export function groupSafetyNumber(digits: string): string[] {
  const compact = digits.replace(/\s+/g, '');
  if (!new RegExp(`^\\d{${SAFETY_NUMBER_DIGITS}}$`).test(compact)) {
    throw new Error('The safety number the crypto core gave is not 60 digits.');
  }
  const groups: string[] = [];
  for (let i = 0; i < compact.length; i += SAFETY_NUMBER_GROUP) {
    groups.push(compact.slice(i, i + SAFETY_NUMBER_GROUP));
  }
  return groups;
}

export class Devices {
  constructor(private readonly context: FeatureContext) {}

  async list(): Promise<OwnDevice[]> {
    const { items } = await call(() => this.context.client.GET('/keys/devices'));
    return sortDevices(items);
  }

  /** Signs the device out and removes its keys. Removing one already gone is not an error. */
  async remove(deviceId: string): Promise<void> {
    if (deviceId === this.context.store.getState().auth.deviceId) {
      throw new Error('This is the device you are using: log out instead.');
    }
    try {
      await call(() =>
        this.context.client.DELETE('/keys/devices/{device_id}', {
          params: { path: { device_id: deviceId } },
        }),
      );
    } catch (error) {
      if (!(error instanceof ApiRequestError && error.status === 404)) throw error;
    }
  }

  /**
   * The safety number with another user, as 12 groups of 5 digits, over both users' devices as
   * the server lists them now (read again first, and checked by the core: signatures, key
   * changes).
   */
  async safetyNumber(otherUserId: string): Promise<string[]> {
    const { safety } = this.context;
    await safety.ready();
    // Users the server does not show you (no shared chat) are left out of the listing.
    await safety.syncDevices([myId(this.context), otherUserId]);
    if ((await safety.listedDevices(otherUserId)).length === 0) {
      throw new Error(
        'They have no device with encryption keys that you can see, so there is nothing to compare yet.',
      );
    }
    return groupSafetyNumber(await safety.safetyNumber(otherUserId));
  }
}
