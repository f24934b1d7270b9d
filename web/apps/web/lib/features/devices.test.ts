import { describe, expect, it } from 'vitest';
import { apiError, featureHarness, noContent } from '../testing/features';
import { ALICE, DEVICE, ME } from '../testing/fixtures';
import {
  deviceName,
  Devices,
  formatLastSeen,
  groupSafetyNumber,
  keyFingerprint,
  sortDevices,
} from './devices';
import type { OwnDevice } from './types';

function device(id: string, lastSeen: string, overrides: Partial<OwnDevice> = {}): OwnDevice {
  return {
    device_id: id,
    display_name: '',
    created_at: '2026-11-01T00:00:00Z',
    last_seen_at: lastSeen,
    current: false,
    one_time_key_count: 50,
    has_fallback_key: true,
    identity_keys: { curve25519: 'c', ed25519: 'e', signature: 's' },
    ...overrides,
  } as OwnDevice;
}

const DIGITS = '123456789012345678901234567890098765432109876543210987654321';

describe('device helpers', () => {
  it('lists this device first, then by last seen', () => {
    const sorted = sortDevices([
      device('a', '2026-11-20T00:00:00Z'),
      device('b', '2026-11-28T00:00:00Z'),
      device('c', '2026-11-01T00:00:00Z', { current: true }),
    ]);
    expect(sorted.map((d) => d.device_id)).toEqual(['c', 'b', 'a']);
  });

  it('names unnamed devices and says when they were last seen', () => {
    expect(deviceName({ display_name: ' Laptop ', device_id: 'x' })).toBe('Laptop');
    expect(
      deviceName({ display_name: '', device_id: '0190a3a0-0000-7000-8000-00000000abcd' }),
    ).toBe('Device 0000abcd');
    expect(
      keyFingerprint({
        identity_keys: { curve25519: 'c', ed25519: 'P1WTTuR8jqDjiLd9rsSrFFoXC', signature: 's' },
      }),
    ).toBe('P1WTTuR8');
    const now = Date.UTC(2026, 10, 28, 12, 0, 0);
    expect(formatLastSeen('2026-11-28T11:59:30Z', now)).toBe('just now');
    expect(formatLastSeen('2026-11-28T11:15:00Z', now)).toBe('45 minutes ago');
    expect(formatLastSeen('2026-11-28T11:00:00Z', now)).toBe('1 hour ago');
    expect(formatLastSeen('2026-11-27T11:00:00Z', now)).toBe('yesterday');
    expect(formatLastSeen('2026-11-24T11:00:00Z', now)).toBe('4 days ago');
    expect(formatLastSeen('garbage', now)).toBe('unknown');
  });

  it('groups the 60 digits by 5 and refuses anything else', () => {
    expect(groupSafetyNumber(DIGITS)).toHaveLength(12);
    expect(groupSafetyNumber(DIGITS)[0]).toBe('12345');
    expect(groupSafetyNumber(DIGITS.replace(/(\d{5})/g, '$1 ').trim()).join('')).toBe(DIGITS);
    expect(() => groupSafetyNumber(DIGITS.slice(1))).toThrow(/60 digits/);
    expect(() => groupSafetyNumber(`${DIGITS.slice(1)}x`)).toThrow(/60 digits/);
  });
});

describe('Devices', () => {
  function setUp() {
    const harness = featureHarness();
    harness.api.route('GET', /^\/keys\/devices$/, () =>
      Response.json({
        items: [
          device('old', '2026-11-02T00:00:00Z'),
          device(DEVICE, '2026-11-28T00:00:00Z', { current: true }),
        ],
      }),
    );
    harness.api.route('DELETE', /^\/keys\/devices\/([^/]+)$/, noContent);
    return { ...harness, devices: new Devices(harness.context) };
  }

  it('lists and removes devices, but not the one in use', async () => {
    const { devices, api } = setUp();
    expect((await devices.list()).map((d) => d.device_id)).toEqual([DEVICE, 'old']);
    await devices.remove('old');
    expect(api.callsTo('DELETE', '/keys/devices/old')).toHaveLength(1);
    await expect(devices.remove(DEVICE)).rejects.toThrow(/log out instead/);
    api.route('DELETE', /^\/keys\/devices\/([^/]+)$/, () => apiError(404, 'not_found'));
    await expect(devices.remove('gone')).resolves.toBeUndefined();
    api.route('GET', /^\/keys\/devices$/, () => apiError(503, 'unavailable'));
    await expect(devices.list()).rejects.toThrow(/not reachable/);
  });

  it("reads both users' devices again, then groups the core's digits", async () => {
    const { devices, synced, safety } = setUp();
    const groups = await devices.safetyNumber(ALICE);
    expect(synced).toEqual([[ME, ALICE]]);
    expect(groups).toHaveLength(12);
    expect(groups.join('')).toBe(safety.digits);
  });

  it('waits for the device, and says why when encryption is not available', async () => {
    const { devices, safety, synced } = setUp();
    safety.ready = () => Promise.reject(new Error('the encryption core did not load'));
    await expect(devices.safetyNumber(ALICE)).rejects.toThrow('the encryption core did not load');
    expect(synced).toEqual([]);
  });

  it('has nothing to compare with someone without visible devices', async () => {
    const { devices, safety } = setUp();
    safety.listed[ALICE] = 0;
    await expect(devices.safetyNumber(ALICE)).rejects.toThrow(/nothing to compare/);
  });

  it('refuses a safety number that is not 60 digits', async () => {
    const { devices, safety } = setUp();
    safety.digits = '12345';
    await expect(devices.safetyNumber(ALICE)).rejects.toThrow(/not 60 digits/);
  });
});
