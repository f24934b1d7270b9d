/**
 * Failed requests as sentences a person can act on. The api answers `{"error": {"code",
 * "message"}}`; its messages are already specific for most refusals ("only group admins may do
 * this"), but a 404 only says "not found" on purpose (it does not tell a non-member whether a
 * chat exists), so each caller says what a 404 means where it asked.
 */
import { errorDetail } from '@parley/sdk';

export class ApiRequestError extends Error {
  constructor(
    message: string,
    /** The api's stable `code` (`network_error` when no answer came). */
    readonly code: string,
    /** The HTTP status (0 when no answer came). */
    readonly status: number,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

/** What a caller says instead of the api's words, by error code or HTTP status. */
export type ErrorWording = Partial<Record<string | number, string>>;

const GENERIC: ErrorWording = {
  401: 'Your session ended. Sign in again.',
  413: 'That is too large for the server.',
  429: 'Too many requests. Wait a moment and try again.',
  500: 'The server had a problem. Try again later.',
  502: 'The server is not reachable right now. Try again later.',
  503: 'The server is not reachable right now. Try again later.',
};

/** First letter up, a full stop at the end: the api's messages are lowercase fragments. */
export function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return '';
  const first = trimmed[0]!.toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** The error for a failed openapi-fetch call (`{ error, response }`). */
export function requestError(
  error: unknown,
  response: Response,
  wording: ErrorWording = {},
): ApiRequestError {
  const detail = errorDetail(error, response.status);
  const text =
    wording[detail.code] ??
    wording[response.status] ??
    GENERIC[response.status] ??
    (detail.code === 'http_error'
      ? `The request failed (HTTP ${response.status}).`
      : sentence(detail.message));
  return new ApiRequestError(text, detail.code, response.status);
}

/** `fetch` itself failed: offline, DNS, connection refused. */
export function networkError(cause: unknown): ApiRequestError {
  const reason = cause instanceof Error && cause.message ? ` (${cause.message})` : '';
  return new ApiRequestError(
    `Can't reach the server. Check your connection and try again${reason}.`,
    'network_error',
    0,
  );
}

/**
 * Runs an SDK call, turning a thrown `fetch` failure into {@link networkError} and a non-2xx
 * answer into {@link requestError}. Returns the response's data (`undefined` for a 204).
 */
export async function call<T>(
  request: () => Promise<{ data?: T; error?: unknown; response: Response }>,
  wording: ErrorWording = {},
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await request();
  } catch (cause) {
    throw networkError(cause);
  }
  if (!result.response.ok) throw requestError(result.error, result.response, wording);
  return result.data as T;
}

/** For UI: any thrown value as a message. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error && error.message) return error.message;
  return 'Something went wrong. Try again.';
}
