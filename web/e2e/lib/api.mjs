// The Parley API from Node (fetch), for what the tests arrange outside the browser: accounts,
// chats, messages seeded as opaque ciphertext, uploads.
import { randomBytes, randomUUID } from 'node:crypto';

export const PASSWORD = 'correct horse battery staple';

export function uniqueEmail(tag) {
  const local =
    tag
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'user';
  return `${local}-${randomUUID().slice(0, 12)}@example.org`;
}

export class ApiError extends Error {
  constructor(method, path, status, body) {
    super(`${method} ${path}: ${status} ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

export async function call(baseUrl, method, path, { token, json, body, headers = {} } = {}) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: json !== undefined ? JSON.stringify(json) : body,
  });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: keep the text.
  }
  if (!response.ok) throw new ApiError(method, path, response.status, parsed);
  return parsed;
}

/** Registers `name`; `{ user, access_token, refresh_token, device_id, email, password }`. */
export async function register(baseUrl, name, email = uniqueEmail(name)) {
  const auth = await call(baseUrl, 'POST', '/auth/register', {
    json: { name, email, password: PASSWORD },
  });
  return { ...auth, email, password: PASSWORD };
}

/** A new session (and device) of an existing account. */
export async function login(baseUrl, email, password = PASSWORD) {
  return call(baseUrl, 'POST', '/auth/login', { json: { email, password } });
}

export async function createDirectChat(baseUrl, token, otherUserId) {
  return call(baseUrl, 'POST', '/chats', {
    token,
    json: { type: 'direct', member_ids: [otherUserId] },
  });
}

export async function createGroup(baseUrl, token, name, memberIds) {
  return call(baseUrl, 'POST', '/chats', {
    token,
    json: { type: 'group', name, member_ids: memberIds },
  });
}

/**
 * A message whose ciphertext is random bytes under the Megolm algorithm's name: the server stores
 * it as any other; a client shows it as a message it cannot decrypt.
 */
export async function postOpaqueMessage(baseUrl, token, chatId, size = 96) {
  return call(baseUrl, 'POST', `/chats/${chatId}/messages`, {
    token,
    json: {
      client_msg_id: randomUUID(),
      algorithm: 'parley.megolm.v1',
      ciphertext: randomBytes(size).toString('base64'),
    },
  });
}

/** `POST /media` with the bytes and the declared content type; the media view. */
export async function upload(baseUrl, token, bytes, contentType) {
  return call(baseUrl, 'POST', '/media', {
    token,
    body: bytes,
    headers: { 'content-type': contentType },
  });
}
