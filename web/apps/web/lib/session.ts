/**
 * The signed-in session: the access token in memory, the refresh token in an `HttpOnly` cookie
 * that no script on the page can read (`token_delivery=cookie`; the server sets it and
 * `POST /auth/refresh-cookie` rotates it), and who is signed in (user and device ids) in a
 * {@link TokenStore} (IndexedDB in the browser).
 *
 * Refresh tokens rotate and a reused one revokes the session, so refreshing is serialised over
 * every tab of the origin with the Web Locks API when the browser has it (the browser sends
 * the newest cookie, whichever tab rotated it).
 */
import { errorDetail, type AuthSession, type ParleyClient, type TokenPair } from '@parley/sdk';
import type { StoredSession, TokenStore } from './tokenStore';

/** Refresh when less than this is left of the access token (or a fifth of a shorter lifetime). */
export const REFRESH_MARGIN_MS = 60_000;
const REFRESH_LOCK = 'parley-refresh';

/** The server said no (bad credentials, or the session is over): sign in again. */
export class AuthError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface Timers {
  setTimeout(handler: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

export interface SessionOptions {
  client: ParleyClient;
  store: TokenStore;
  now?: () => number;
  timers?: Timers;
  /** `navigator.locks` where it exists. */
  locks?: LockManagerLike | null;
  /** A new access token (after a refresh): the socket re-authenticates with it. */
  onToken?: (token: string) => void;
  /** The session ended on the server's word (refresh refused): the app signs out. */
  onEnded?: (reason: string) => void;
}

export const browserTimers: Timers = {
  setTimeout: (handler, ms) => globalThis.setTimeout(handler, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class Session {
  private accessToken: string | null = null;
  private expiresAt = 0;
  private marginMs = REFRESH_MARGIN_MS;
  private refreshing: Promise<string> | null = null;
  private timer: unknown = null;
  private readonly now: () => number;
  private readonly timers: Timers;
  identity: { userId: string; deviceId: string } | null = null;

  constructor(private readonly options: SessionOptions) {
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? browserTimers;
  }

  get signedIn(): boolean {
    return this.identity !== null;
  }

  /** `POST /auth/login`. */
  async login(email: string, password: string): Promise<AuthSession> {
    const { data, error, response } = await this.options.client.POST('/auth/login', {
      params: { query: { token_delivery: 'cookie' } },
      body: { email, password },
    });
    if (!data) throw authError(error, response);
    await this.begin(data);
    return data;
  }

  /** `POST /auth/register`. */
  async register(name: string, email: string, password: string): Promise<AuthSession> {
    const { data, error, response } = await this.options.client.POST('/auth/register', {
      params: { query: { token_delivery: 'cookie' } },
      body: { name, email, password },
    });
    if (!data) throw authError(error, response);
    await this.begin(data);
    return data;
  }

  /**
   * After a page load: the stored session, with a fresh access token, or `null` when there is
   * none or the server no longer accepts it. Network failures throw (the session is kept).
   */
  async restore(): Promise<StoredSession | null> {
    const stored = await this.options.store.load();
    if (!stored) return null;
    this.identity = { userId: stored.userId, deviceId: stored.deviceId };
    try {
      await this.refresh();
    } catch (error) {
      if (error instanceof AuthError) return null;
      throw error;
    }
    return stored;
  }

  /** The access token for the next request, refreshed first when it is about to expire. */
  async getToken(): Promise<string | null> {
    if (!this.accessToken) return this.refreshing ? this.refreshing.catch(() => null) : null;
    if (this.expiresAt - this.now() < this.marginMs) {
      try {
        return await this.refresh();
      } catch {
        // Let the request go with what we have; a 401 ends the session through the middleware.
        return this.accessToken;
      }
    }
    return this.accessToken;
  }

  /** Rotates the refresh token for a new access token; concurrent calls share one rotation. */
  refresh(): Promise<string> {
    this.refreshing ??= this.withLock(() => this.rotate()).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** `POST /auth/logout` (best effort; it also clears the cookie), then forgets everything local. */
  async logout(): Promise<void> {
    // A token that has expired would be refused, leaving the session (and its cookie) alive.
    const token = await this.getToken().catch(() => null);
    this.forget();
    try {
      if (token) {
        await this.options.client.POST('/auth/logout', {
          body: {},
          headers: { Authorization: `Bearer ${token}` },
        });
      }
    } finally {
      await this.options.store.clear();
    }
  }

  /** Drops the in-memory state and the stored identity (the session ended elsewhere). */
  async end(): Promise<void> {
    this.forget();
    await this.options.store.clear();
  }

  private forget() {
    this.accessToken = null;
    this.expiresAt = 0;
    this.identity = null;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private async begin(auth: AuthSession) {
    await this.options.store.save({ userId: auth.user.id, deviceId: auth.device_id });
    this.identity = { userId: auth.user.id, deviceId: auth.device_id };
    this.adopt(auth);
  }

  private adopt(tokens: TokenPair) {
    this.accessToken = tokens.access_token;
    const lifetimeMs = tokens.expires_in * 1000;
    this.expiresAt = this.now() + lifetimeMs;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.marginMs = Math.min(REFRESH_MARGIN_MS, lifetimeMs * 0.2);
    // At 80 % of the lifetime: before the on-demand margin, so the socket gets its `auth`
    // frame in time, and never more often than the server's refresh rate limit allows.
    const inMs = Math.max(5_000, lifetimeMs * 0.8);
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.refresh().catch(() => undefined);
    }, inMs);
  }

  private async rotate(): Promise<string> {
    const stored = await this.options.store.load();
    if (!stored) {
      this.forget();
      throw new AuthError('signed_out', 'signed out');
    }
    const { data, error, response } = await this.options.client.POST('/auth/refresh-cookie');
    if (!data) {
      const failure = authError(error, response);
      if (response.status === 400 || response.status === 401) {
        await this.end();
        this.options.onEnded?.(failure.code);
        throw failure;
      }
      // Rate limited or the server is in trouble: keep the session and try again later.
      throw new Error(`refresh failed: ${failure.message}`);
    }
    this.adopt(data);
    this.options.onToken?.(data.access_token);
    return data.access_token;
  }

  private withLock<T>(work: () => Promise<T>): Promise<T> {
    const locks = this.options.locks;
    return locks ? locks.request(REFRESH_LOCK, work) : work();
  }
}

function authError(error: unknown, response: Response): AuthError {
  const detail = errorDetail(error, response.status);
  return new AuthError(detail.code, detail.message, response.status);
}
