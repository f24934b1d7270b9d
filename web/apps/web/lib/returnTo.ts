/**
 * Where to go after signing in when a page sent you to the login form (an invite link opened
 * while signed out). Only a path of this app is accepted, so `?next=` cannot send anyone to
 * another site (`//evil.example`, `https://…`, `javascript:`).
 */
const APP_PATH = /^\/[a-z0-9-]+\/?(?:\?[^#\s\\]*)?$/i;

/** The path to return to, or `null` when `value` is not one of ours. */
export function safeReturnPath(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 2048) return null;
  if (!APP_PATH.test(value)) return null;
  // The form pages themselves would only send you back to the form.
  if (/^\/(login|register)\/?(\?|$)/.test(value)) return null;
  return value;
}

/** The `query` to put on `/login` or `/register` for returning to `path` afterwards. */
export function returnQuery(path: string | null): Record<string, string> {
  const safe = safeReturnPath(path);
  return safe ? { next: safe } : {};
}
