import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { paths } from './schema';

/** Where the access token comes from; `null`/`undefined` sends the request without one. */
export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

export interface ParleyClientOptions {
  /** The api's origin, e.g. `window.location.origin` (the web app is served by the api itself). */
  baseUrl: string;
  /** Called before every authenticated request; keep the token in memory. */
  getToken: TokenSource;
  /** Called when an authenticated request answers 401 (token expired or session revoked). */
  onUnauthorized?: (response: Response, schemaPath: string) => void;
  /** A `fetch` to use instead of the global one (tests). */
  fetch?: typeof globalThis.fetch;
}

export type ParleyClient = Client<paths>;

/**
 * Routes that take no access token: they are called with credentials in the body (register,
 * login, refresh), in the refresh cookie (`/auth/refresh-cookie`) or with none at all.
 * `GET /auth/refresh` takes the *refresh* token as its bearer, which the caller sets explicitly.
 */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set([
  '/auth/register',
  '/auth/login',
  '/auth/refresh',
  '/auth/refresh-cookie',
  '/healthz',
  '/metrics',
  '/.well-known/jwks.json',
]);

/**
 * Adds `Authorization: Bearer <access token>` to every request for a route that needs it,
 * unless the caller already set an `Authorization` header.
 */
export function authMiddleware(
  getToken: TokenSource,
  onUnauthorized?: ParleyClientOptions['onUnauthorized'],
): Middleware {
  return {
    async onRequest({ request, schemaPath }) {
      if (PUBLIC_PATHS.has(schemaPath) || request.headers.has('Authorization')) {
        return undefined;
      }
      const token = await getToken();
      if (token) {
        request.headers.set('Authorization', `Bearer ${token}`);
      }
      return request;
    },
    onResponse({ response, schemaPath }) {
      if (response.status === 401 && !PUBLIC_PATHS.has(schemaPath)) {
        onUnauthorized?.(response, schemaPath);
      }
      return undefined;
    },
  };
}

/** A typed client for every route of `openapi/openapi.json`, with the bearer token attached. */
export function createParleyClient(options: ParleyClientOptions): ParleyClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  client.use(authMiddleware(options.getToken, options.onUnauthorized));
  return client;
}
