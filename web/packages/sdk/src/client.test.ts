import { describe, expect, it, vi } from 'vitest';
import { createParleyClient } from './client';
import { downloadMedia, uploadMedia } from './media';

interface Seen {
  url: string;
  method: string;
  headers: Headers;
  body: ArrayBuffer | null;
}

/** A fetch that records each request and answers with `respond`. */
function recordingFetch(respond: (request: Request) => Response = () => Response.json({})) {
  const seen: Seen[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const body = request.body ? await request.clone().arrayBuffer() : null;
    seen.push({ url: request.url, method: request.method, headers: request.headers, body });
    return respond(request);
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, seen };
}

const CHAT = '0190a3a0-0000-7000-8000-000000000002';

describe('createParleyClient', () => {
  it('adds the bearer token to routes that need it', async () => {
    const { fetch, seen } = recordingFetch(() => Response.json({ items: [], next_cursor: null }));
    const client = createParleyClient({
      baseUrl: 'http://api.test/',
      getToken: () => 'tok-1',
      fetch,
    });
    const { data } = await client.GET('/chats');
    expect(data).toEqual({ items: [], next_cursor: null });
    expect(seen[0]?.url).toBe('http://api.test/chats');
    expect(seen[0]?.headers.get('Authorization')).toBe('Bearer tok-1');
  });

  it('asks for the token on every request (it may have been refreshed)', async () => {
    const { fetch, seen } = recordingFetch();
    let token = 'old';
    const client = createParleyClient({
      baseUrl: 'http://api.test',
      getToken: async () => token,
      fetch,
    });
    await client.GET('/chats/{id}', { params: { path: { id: CHAT } } });
    token = 'new';
    await client.GET('/chats/{id}', { params: { path: { id: CHAT } } });
    expect(seen.map((s) => s.headers.get('Authorization'))).toEqual(['Bearer old', 'Bearer new']);
    expect(seen[0]?.url).toBe(`http://api.test/chats/${CHAT}`);
  });

  it('sends no token to register, login and refresh', async () => {
    const { fetch, seen } = recordingFetch();
    const getToken = vi.fn(() => 'tok');
    const client = createParleyClient({ baseUrl: 'http://api.test', getToken, fetch });
    await client.POST('/auth/login', { body: { email: 'a@b.c', password: 'password1' } });
    await client.POST('/auth/register', {
      body: { name: 'A', email: 'a@b.c', password: 'password1' },
    });
    await client.POST('/auth/refresh', { body: { refresh_token: 'r' } });
    expect(seen.every((s) => !s.headers.has('Authorization'))).toBe(true);
    expect(getToken).not.toHaveBeenCalled();
    expect(new TextDecoder().decode(seen[2]?.body ?? undefined)).toBe('{"refresh_token":"r"}');
  });

  it('keeps an Authorization header the caller set', async () => {
    const { fetch, seen } = recordingFetch();
    const client = createParleyClient({
      baseUrl: 'http://api.test',
      getToken: () => 'access',
      fetch,
    });
    await client.GET('/auth/refresh', { headers: { Authorization: 'Bearer refresh-secret' } });
    await client.GET('/users/{id}', {
      params: { path: { id: CHAT } },
      headers: { Authorization: 'Bearer other' },
    });
    expect(seen.map((s) => s.headers.get('Authorization'))).toEqual([
      'Bearer refresh-secret',
      'Bearer other',
    ]);
  });

  it('sends no header when there is no token', async () => {
    const { fetch, seen } = recordingFetch();
    const client = createParleyClient({ baseUrl: 'http://api.test', getToken: () => null, fetch });
    await client.GET('/chats');
    expect(seen[0]?.headers.has('Authorization')).toBe(false);
  });

  it('reports 401 answers of authenticated routes, not of login', async () => {
    const { fetch } = recordingFetch(() =>
      Response.json({ error: { code: 'unauthorized', message: 'no' } }, { status: 401 }),
    );
    const onUnauthorized = vi.fn();
    const client = createParleyClient({
      baseUrl: 'http://api.test',
      getToken: () => 't',
      onUnauthorized,
      fetch,
    });
    const { error, response } = await client.GET('/chats');
    expect(response.status).toBe(401);
    expect(error).toEqual({ error: { code: 'unauthorized', message: 'no' } });
    await client.POST('/auth/login', { body: { email: 'a@b.c', password: 'x' } });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    expect(onUnauthorized.mock.calls[0]?.[1]).toBe('/chats');
  });
});

describe('binary bodies', () => {
  it('uploads bytes as they are, with the content type given', async () => {
    const media = {
      id: '0190a3a0-0000-7000-8000-000000000009',
      size: 4,
      content_type: 'application/octet-stream',
      sha256: 'ab',
      created_at: '2026-11-28T10:00:00Z',
    };
    const { fetch, seen } = recordingFetch(() => Response.json(media, { status: 201 }));
    const client = createParleyClient({ baseUrl: 'http://api.test', getToken: () => 't', fetch });
    const { data } = await uploadMedia(client, new Uint8Array([0, 159, 255, 10]));
    expect(data).toEqual(media);
    expect(seen[0]?.method).toBe('POST');
    expect(seen[0]?.url).toBe('http://api.test/media');
    expect(seen[0]?.headers.get('Content-Type')).toBe('application/octet-stream');
    expect(seen[0]?.headers.get('Authorization')).toBe('Bearer t');
    expect([...new Uint8Array(seen[0]?.body ?? new ArrayBuffer(0))]).toEqual([0, 159, 255, 10]);
  });

  it('downloads as a Blob', async () => {
    const { fetch, seen } = recordingFetch(
      () => new Response(new Uint8Array([1, 2, 3]), { status: 206 }),
    );
    const client = createParleyClient({ baseUrl: 'http://api.test', getToken: () => 't', fetch });
    const { data } = await downloadMedia(client, CHAT, 'bytes=0-2');
    expect(data).toBeInstanceOf(Blob);
    expect([...new Uint8Array(await (data as Blob).arrayBuffer())]).toEqual([1, 2, 3]);
    expect(seen[0]?.headers.get('Range')).toBe('bytes=0-2');
  });
});
