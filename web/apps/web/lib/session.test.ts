import { createParleyClient } from '@parley/sdk';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthError, Session, type LockManagerLike } from './session';
import { FakeApi } from './testing/fakeApi';
import { ME, user } from './testing/fixtures';
import { memoryTokenStore, type TokenStore } from './tokenStore';

function setUp(options: { store?: TokenStore; locks?: LockManagerLike } = {}) {
  const api = new FakeApi();
  api.users.set(ME, { ...user(ME, 'Me'), email: 'me@example.org', password: 'password1' });
  const store = options.store ?? memoryTokenStore();
  const onToken = vi.fn();
  const onEnded = vi.fn();
  let session: Session | null = null;
  const client = createParleyClient({
    baseUrl: 'http://api.test',
    getToken: () => session?.getToken() ?? null,
    fetch: api.fetch,
  });
  session = new Session({ client, store, onToken, onEnded, locks: options.locks ?? null });
  return { api, store, session, onToken, onEnded, client };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date('2026-11-28T10:00:00Z'));
});
afterEach(() => vi.useRealTimers());

describe('Session', () => {
  it('keeps the access token in memory and never sees the refresh token (a cookie)', async () => {
    const { api, store, session } = setUp();
    const auth = await session.login('me@example.org', 'password1');
    expect(await session.getToken()).toBe(auth.access_token);
    expect(auth.refresh_token).toBeUndefined();
    expect(api.refreshCookie).toBe('refresh-1');
    expect(await store.load()).toEqual({ userId: ME, deviceId: api.deviceId });
    // Credentials travel in bodies only, never in a URL; the URL asks for the cookie.
    const login = api.callsTo('POST', '/auth/login')[0];
    expect([...(login?.query.keys() ?? [])]).toEqual(['token_delivery']);
    expect(login?.query.get('token_delivery')).toBe('cookie');
  });

  it('refuses wrong credentials with the server’s code', async () => {
    const { session, store } = setUp();
    await expect(session.login('me@example.org', 'nope')).rejects.toMatchObject({
      name: 'AuthError',
      code: 'invalid_credentials',
      status: 401,
    });
    expect(await store.load()).toBeNull();
  });

  it('rotates the refresh token before the access token expires', async () => {
    const { api, store, session, onToken } = setUp();
    await session.login('me@example.org', 'password1');
    // 80 % of the 900 s lifetime.
    await vi.advanceTimersByTimeAsync(719_000);
    expect(api.callsTo('POST', '/auth/refresh-cookie')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(api.callsTo('POST', '/auth/refresh-cookie')).toHaveLength(1);
    expect(onToken).toHaveBeenCalledWith('access-2');
    expect(api.refreshCookie).toBe('refresh-2');
    expect(await store.load()).toEqual({ userId: ME, deviceId: api.deviceId });
    expect(await session.getToken()).toBe('access-2');
  });

  it('refreshes on demand when the token is about to expire, once for concurrent callers', async () => {
    const { api, session } = setUp();
    api.accessTtlSecs = 30;
    await session.login('me@example.org', 'password1');
    expect(await session.getToken()).toBe('access-1');
    // The clock jumps (a sleeping laptop): 5 of the 30 s are left, less than a fifth.
    vi.setSystemTime(Date.now() + 25_000);
    const tokens = await Promise.all([session.getToken(), session.getToken(), session.getToken()]);
    expect(tokens).toEqual(['access-2', 'access-2', 'access-2']);
    expect(api.callsTo('POST', '/auth/refresh-cookie')).toHaveLength(1);
  });

  it('stops when another tab signed out (nothing stored any more)', async () => {
    const { api, store, session } = setUp();
    await session.login('me@example.org', 'password1');
    await store.clear();
    await expect(session.refresh()).rejects.toMatchObject({ code: 'signed_out' });
    expect(api.callsTo('POST', '/auth/refresh-cookie')).toHaveLength(0);
  });

  it('rotates under the cross-tab lock when there is one', async () => {
    const names: string[] = [];
    const locks: LockManagerLike = {
      request: (name, callback) => {
        names.push(name);
        return callback();
      },
    };
    const { session } = setUp({ locks });
    await session.login('me@example.org', 'password1');
    await session.refresh();
    expect(names).toEqual(['parley-refresh']);
  });

  it('ends the session when the server refuses the refresh token', async () => {
    const { api, store, session, onEnded } = setUp();
    await session.login('me@example.org', 'password1');
    api.refreshTokens.clear();
    await expect(session.refresh()).rejects.toBeInstanceOf(AuthError);
    expect(onEnded).toHaveBeenCalledWith('unauthorized');
    expect(await store.load()).toBeNull();
    expect(await session.getToken()).toBeNull();
  });

  it('keeps the session when the server is only unavailable', async () => {
    const { api, store, session } = setUp();
    await session.login('me@example.org', 'password1');
    api.route('POST', /^\/auth\/refresh-cookie$/, () => Response.json({}, { status: 503 }));
    await expect(session.refresh()).rejects.toThrow(/refresh failed/);
    expect(await store.load()).toEqual({ userId: ME, deviceId: api.deviceId });
    expect(api.refreshCookie).toBe('refresh-1');
  });

  it('restores a stored session after a page load, or reports none', async () => {
    const first = setUp();
    await first.session.login('me@example.org', 'password1');
    const again = new Session({ client: first.client, store: first.store });
    expect(await again.restore()).toMatchObject({ userId: ME });
    expect(await again.getToken()).toBe('access-2');

    const empty = setUp();
    expect(await empty.session.restore()).toBeNull();
  });

  it('refreshes an expired access token to log out, so the session really ends', async () => {
    const { api, session } = setUp();
    await session.login('me@example.org', 'password1');
    // The laptop slept past the token's lifetime; the refresh timer has not run yet.
    vi.setSystemTime(Date.now() + 1_000_000);
    await session.logout();
    expect(api.callsTo('POST', '/auth/refresh-cookie')).toHaveLength(1);
    const logout = api.callsTo('POST', '/auth/logout')[0];
    expect(logout?.headers.get('Authorization')).toBe('Bearer access-2');
    expect(api.refreshCookie).toBeNull();
  });

  it('logs out on the server (which clears the cookie) and forgets who was signed in', async () => {
    const { api, store, session } = setUp();
    await session.login('me@example.org', 'password1');
    await session.logout();
    const logout = api.callsTo('POST', '/auth/logout')[0];
    expect(logout?.headers.get('Authorization')).toBe('Bearer access-1');
    expect(api.refreshCookie).toBeNull();
    expect(await store.load()).toBeNull();
    expect(session.signedIn).toBe(false);
  });
});
