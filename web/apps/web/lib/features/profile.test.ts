import { describe, expect, it } from 'vitest';
import { apiError, featureHarness } from '../testing/features';
import { ME } from '../testing/fixtures';
import { fitWithin, Profile, validateAvatarFile, validateName, validateStatus } from './profile';

describe('profile checks', () => {
  it('accepts names the api accepts', () => {
    expect(validateName('  Ada Lovelace ')).toBeNull();
    expect(validateName('   ')).toBe('Enter a name.');
    expect(validateName('x'.repeat(64))).toBeNull();
    expect(validateName('x'.repeat(65))).toBe('Use at most 64 characters.');
    // Counted in characters, not UTF-16 units.
    expect(validateName('\u{1F600}'.repeat(64))).toBeNull();
    expect(validateName('a\u0007b')).toMatch(/not allowed/);
    expect(validateStatus('')).toBeNull();
    expect(validateStatus('y'.repeat(141))).toBe('Use at most 140 characters.');
  });

  it('accepts pictures the browser can show', () => {
    expect(validateAvatarFile({ type: 'image/png', size: 1000 })).toBeNull();
    expect(validateAvatarFile({ type: 'image/svg+xml', size: 1000 })).toMatch(/JPEG, PNG/);
    expect(validateAvatarFile({ type: 'image/jpeg', size: 0 })).toBe('That file is empty.');
    expect(validateAvatarFile({ type: 'image/jpeg', size: 21 * 1024 * 1024 })).toMatch(/20 MB/);
  });

  it('scales down to fit, never up', () => {
    expect(fitWithin(4000, 3000)).toEqual({ width: 512, height: 384 });
    expect(fitWithin(300, 1200)).toEqual({ width: 128, height: 512 });
    expect(fitWithin(200, 100)).toEqual({ width: 200, height: 100 });
    expect(fitWithin(10000, 1)).toEqual({ width: 512, height: 1 });
    expect(fitWithin(0, 10)).toEqual({ width: 1, height: 1 });
  });
});

describe('Profile', () => {
  function setUp() {
    const harness = featureHarness();
    const shrunk: Blob[] = [];
    const profile = new Profile(harness.context, async (file) => {
      shrunk.push(file);
      return new Blob([new Uint8Array([1, 2, 3])], { type: 'image/webp' });
    });
    harness.api.users.set(ME, {
      id: ME,
      name: 'Me',
      status: '',
      created_at: '2026-11-01T00:00:00Z',
    });
    harness.api.route('PUT', /^\/users\/([^/]+)$/, (call) => {
      const stored = harness.api.users.get(ME)!;
      const body = call.body as Record<string, unknown>;
      const next = { ...stored, ...body } as typeof stored;
      if (body.avatar_media_id !== undefined) {
        next.avatar_media_id = body.avatar_media_id as string | null;
        next.avatar_url = body.avatar_media_id ? `/media/${String(body.avatar_media_id)}` : null;
      }
      harness.api.users.set(ME, next);
      return Response.json(next);
    });
    return { ...harness, profile, shrunk };
  }

  it('sends only what changed', async () => {
    const { profile, api, store } = setUp();
    await profile.save(' Me ', '');
    expect(api.callsTo('PUT', `/users/${ME}`)).toHaveLength(0);
    await profile.save('Ada', ' Out hiking ');
    expect(api.callsTo('PUT', `/users/${ME}`)[0]?.body).toEqual({
      name: 'Ada',
      status: 'Out hiking',
    });
    expect(store.getState().users[ME]).toMatchObject({ name: 'Ada', status: 'Out hiking' });
    await expect(profile.save('', '')).rejects.toThrow('Enter a name.');
  });

  it('uploads the prepared picture with its type, then sets it; removes it', async () => {
    const { profile, api, store, uploads, shrunk } = setUp();
    const file = new Blob([new Uint8Array(10)], { type: 'image/jpeg' });
    await profile.setAvatar(file);
    expect(shrunk).toEqual([file]);
    expect(uploads).toHaveLength(1);
    expect(uploads[0]).toMatchObject({
      contentType: 'image/webp',
      bytes: new Uint8Array([1, 2, 3]),
    });
    const mediaId = store.getState().users[ME]?.avatar_media_id;
    expect(mediaId).toMatch(/^00000000-/);
    expect(api.callsTo('PUT', `/users/${ME}`)[0]?.body).toEqual({ avatar_media_id: mediaId });
    await profile.removeAvatar();
    expect(api.callsTo('PUT', `/users/${ME}`)[1]?.body).toEqual({ avatar_media_id: null });
    expect(store.getState().users[ME]?.avatar_media_id).toBeNull();
  });

  it('refuses a file that is no picture before uploading anything', async () => {
    const { profile, uploads } = setUp();
    await expect(
      profile.setAvatar(new Blob(['<svg/>'], { type: 'image/svg+xml' })),
    ).rejects.toThrow(/JPEG, PNG/);
    expect(uploads).toHaveLength(0);
  });

  it('after sign-up, says app-wide when the picture could not be set', async () => {
    const { profile, api, store } = setUp();
    api.route('PUT', /^\/users\/([^/]+)$/, () =>
      apiError(403, 'forbidden', 'only your own uploads can be attached'),
    );
    await profile.setAvatarAfterSignUp(new Blob([new Uint8Array(4)], { type: 'image/png' }));
    expect(store.getState().banner).toMatch(
      /^Your account is ready, but the profile picture could not be set: Only your own uploads can be attached\./,
    );
  });
});
