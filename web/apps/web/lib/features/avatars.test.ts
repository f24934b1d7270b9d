import { describe, expect, it } from 'vitest';
import { apiError, featureHarness } from '../testing/features';
import { AVATAR_RETRY_MS, Avatars, type ObjectUrls } from './avatars';

const MEDIA = '00000000-0000-4000-8000-000000000a01';

function setUp() {
  const harness = featureHarness();
  const revoked: string[] = [];
  let made = 0;
  const urls: ObjectUrls = {
    create: () => `blob:avatar-${++made}`,
    revoke: (url) => revoked.push(url),
  };
  harness.api.route(
    'GET',
    /^\/media\/([^/]+)$/,
    () =>
      new Response(new Uint8Array([137, 80, 78, 71]), { headers: { 'Content-Type': 'image/png' } }),
  );
  return { ...harness, revoked, avatars: new Avatars(harness.context, urls) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('Avatars', () => {
  it('fetches each picture once, with the token, from our origin', async () => {
    const { avatars, api, store } = setUp();
    avatars.request(MEDIA);
    avatars.request(MEDIA);
    expect(store.getState().avatars[MEDIA]).toEqual({ status: 'loading' });
    await settle();
    expect(store.getState().avatars[MEDIA]).toEqual({ status: 'ready', url: 'blob:avatar-1' });
    const calls = api.callsTo('GET', `/media/${MEDIA}`);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.headers.get('Authorization')).toBe('Bearer access-token');
    avatars.request(null);
    avatars.request('');
    await settle();
    expect(api.calls).toHaveLength(1);
  });

  it('shows initials when a picture fails, and tries again later', async () => {
    const { avatars, api, store, advance } = setUp();
    api.route('GET', /^\/media\/([^/]+)$/, () => apiError(404, 'not_found'));
    avatars.request(MEDIA);
    await settle();
    expect(store.getState().avatars[MEDIA]?.status).toBe('failed');
    avatars.request(MEDIA);
    await settle();
    expect(api.callsTo('GET', `/media/${MEDIA}`)).toHaveLength(1);
    advance(AVATAR_RETRY_MS);
    avatars.request(MEDIA);
    await settle();
    expect(api.callsTo('GET', `/media/${MEDIA}`)).toHaveLength(2);
  });

  it('releases the URLs at sign-out and fetches nothing while signed out', async () => {
    const { avatars, store, revoked, api } = setUp();
    avatars.request(MEDIA);
    await settle();
    avatars.clear();
    expect(revoked).toEqual(['blob:avatar-1']);
    store.dispatch({ type: 'auth/signedOut' });
    avatars.request('00000000-0000-4000-8000-000000000a02');
    await settle();
    expect(api.calls).toHaveLength(1);
  });

  it('revokes a picture the browser could not decode', async () => {
    const { avatars, store, revoked } = setUp();
    avatars.request(MEDIA);
    await settle();
    avatars.failed(MEDIA);
    expect(revoked).toEqual(['blob:avatar-1']);
    expect(store.getState().avatars[MEDIA]?.status).toBe('failed');
  });
});
