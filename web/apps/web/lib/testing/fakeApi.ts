/**
 * A small in-memory stand-in for the api, enough for the controller's flows: it answers like
 * the real routes (shapes from the OpenAPI spec) and records every request.
 */
import type { ChatSummary, ChatView, MessageView, UserView } from '@parley/sdk';

export interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: unknown;
}

type Handler = (call: Call, match: RegExpMatchArray) => Response | Promise<Response>;

type StoredUser = UserView & { email?: string; password?: string };

/** A user as the api shows it: never the password, the email only to its owner. */
function profile(stored: StoredUser, own: boolean): UserView {
  const copy: StoredUser = { ...stored };
  delete copy.password;
  if (!own) delete copy.email;
  return copy;
}

const json = (body: unknown, status = 200) => Response.json(body, { status });
const fail = (status: number, code: string) => json({ error: { code, message: code } }, status);

export class FakeApi {
  calls: Call[] = [];
  users = new Map<string, StoredUser>();
  chats = new Map<string, ChatSummary>();
  details = new Map<string, ChatView>();
  messages = new Map<string, MessageView[]>();
  /** Refresh tokens the server still accepts → the user they belong to. */
  refreshTokens = new Map<string, string>();
  /** The browser's `parley_refresh` cookie (`HttpOnly`: only this fake server sees it). */
  refreshCookie: string | null = null;
  toDeviceQueue: {
    id: string;
    sender_id: string;
    sender_device_id: string;
    ciphertext: string;
    created_at: string;
  }[] = [];
  accessTtlSecs = 900;
  private issued = 0;
  private routes: [string, RegExp, Handler][] = [];

  constructor(readonly deviceId = '00000000-0000-4000-8000-0000000000d1') {
    this.route('POST', /^\/auth\/(login|register)$/, (call, [, kind]) => {
      const body = call.body as { email: string; password: string; name?: string };
      let found = [...this.users.values()].find((u) => u.email === body.email);
      if (kind === 'register') {
        if (found) return fail(409, 'email_taken');
        found = {
          id: `00000000-0000-4000-8000-${(this.users.size + 1).toString().padStart(12, '0')}`,
          name: body.name ?? '',
          status: '',
          created_at: '2026-11-28T00:00:00Z',
          email: body.email,
          password: body.password,
        };
        this.users.set(found.id, found);
      } else if (!found || found.password !== body.password) {
        return fail(401, 'invalid_credentials');
      }
      const user = profile(found, true);
      return json(
        { user, device_id: this.deviceId, ...this.deliver(this.issue(found.id), call) },
        kind === 'register' ? 201 : 200,
      );
    });
    this.route('POST', /^\/auth\/refresh-cookie$/, () => {
      const userId = this.refreshCookie ? this.refreshTokens.get(this.refreshCookie) : undefined;
      if (!userId || !this.refreshCookie) return fail(401, 'unauthorized');
      this.refreshTokens.delete(this.refreshCookie);
      const { refresh_token: next, ...pair } = this.issue(userId);
      this.refreshCookie = next;
      return json(pair);
    });
    this.route('POST', /^\/auth\/refresh$/, (call) => {
      const { refresh_token: token } = call.body as { refresh_token: string };
      const userId = this.refreshTokens.get(token);
      if (!userId) return fail(401, 'invalid_refresh_token');
      this.refreshTokens.delete(token);
      return json(this.issue(userId));
    });
    this.route('POST', /^\/auth\/logout$/, () => {
      this.refreshCookie = null;
      return new Response(null, { status: 204 });
    });
    this.route('GET', /^\/users\/([^/]+)$/, (_call, [, id]) => {
      const found = this.users.get(id!);
      if (!found) return fail(404, 'not_found');
      return json(profile(found, true));
    });
    this.route('GET', /^\/users$/, (call) => {
      const q = (call.query.get('q') ?? '').toLowerCase();
      const items = [...this.users.values()]
        .filter((u) => u.name.toLowerCase().includes(q))
        .map((u) => profile(u, false));
      return json({ items, next_cursor: null });
    });
    this.route('GET', /^\/chats$/, () =>
      json({ items: [...this.chats.values()], next_cursor: null }),
    );
    this.route('POST', /^\/chats$/, (call) => {
      const body = call.body as { type: 'direct' | 'group'; name?: string; member_ids: string[] };
      const id = `00000000-0000-4000-8000-${(0xc00 + this.chats.size + 1).toString(16).padStart(12, '0')}`;
      const now = '2026-11-28T12:00:00Z';
      const me = [...this.refreshTokens.values()][0] ?? '';
      const members = [me, ...body.member_ids].map((user_id) => ({
        user_id,
        role: user_id === me ? 'admin' : 'member',
        joined_at: now,
        read_up_to_seq: 0,
      }));
      const chat: ChatView = {
        id,
        type: body.type,
        name: body.name ?? null,
        created_by: me,
        created_at: now,
        members,
        last_seq: 0,
        last_activity_at: now,
      };
      this.details.set(id, chat);
      this.chats.set(id, {
        id,
        type: body.type,
        name: body.name ?? null,
        member_count: members.length,
        last_seq: 0,
        last_activity_at: now,
        last_message: null,
        unread_count: 0,
      });
      return json(chat, 201);
    });
    this.route('GET', /^\/chats\/([^/]+)$/, (_call, [, id]) => {
      const chat = this.details.get(id!);
      return chat ? json(chat) : fail(404, 'not_found');
    });
    this.route('GET', /^\/chats\/([^/]+)\/messages$/, (call, [, id]) => {
      const all = this.messages.get(id!) ?? [];
      const limit = Number(call.query.get('limit') ?? 50);
      const before = call.query.get('before_seq');
      const after = call.query.get('after_seq');
      let items: MessageView[];
      if (after !== null) {
        items = all.filter((m) => m.seq > Number(after)).slice(0, limit);
        return json({ items, next_cursor: null });
      }
      items = all
        .filter((m) => before === null || m.seq < Number(before))
        .reverse()
        .slice(0, limit);
      const last = items[items.length - 1];
      return json({ items, next_cursor: items.length === limit && last ? String(last.seq) : null });
    });
    this.route('POST', /^\/chats\/([^/]+)\/mark-read$/, () => new Response(null, { status: 204 }));
    this.route('POST', /^\/chats\/([^/]+)\/messages$/, (call, [, id]) => {
      const body = call.body as {
        client_msg_id: string;
        ciphertext: string;
        algorithm: string;
        media_ids?: string[];
      };
      const list = this.messages.get(id!) ?? [];
      const me = [...this.refreshTokens.values()][0] ?? '';
      const sent: MessageView = {
        id: `00000000-0000-4000-9999-${(list.length + 1).toString().padStart(12, '0')}`,
        chat_id: id!,
        sender_id: me,
        sender_device_id: this.deviceId,
        seq: list.length + 1,
        client_msg_id: body.client_msg_id,
        ciphertext: body.ciphertext,
        algorithm: body.algorithm,
        media_ids: body.media_ids ?? [],
        reply_to: null,
        created_at: '2026-11-28T12:00:00Z',
        deleted: false,
      };
      this.messages.set(id!, [...list, sent]);
      return json(sent, 201);
    });
    this.route('PUT', /^\/keys\/devices\/([^/]+)$/, (_call, [, id]) =>
      json({ device_id: id, one_time_key_count: 50, has_fallback_key: true }),
    );
    this.route('POST', /^\/keys\/query$/, (call) => {
      const { user_ids: ids } = call.body as { user_ids: string[] };
      return json({
        users: ids.map((user_id) => ({
          user_id,
          devices: [
            {
              device_id: `dev-of-${user_id}`,
              display_name: 'phone',
              identity_keys: { curve25519: 'c', ed25519: 'e', signature: 's' },
            },
          ],
        })),
      });
    });
    this.route('POST', /^\/keys\/claim$/, (call) => {
      const { devices } = call.body as { devices: { user_id: string; device_id: string }[] };
      return json({
        keys: devices.map((d) => ({
          ...d,
          key_id: 'AAAAAAAAAAE',
          curve25519: 'k',
          signature: 's',
          fallback: false,
          remaining: 49,
        })),
      });
    });
    this.route('POST', /^\/to-device$/, (call) => {
      const { messages } = call.body as { messages: unknown[] };
      return json({
        ids: messages.map(
          (_, i) => `00000000-0000-4000-8000-${(0xf00 + i).toString(16).padStart(12, '0')}`,
        ),
      });
    });
    this.route('GET', /^\/to-device$/, () =>
      json({ items: this.toDeviceQueue, next_cursor: null }),
    );
    this.route('POST', /^\/to-device\/ack$/, () => new Response(null, { status: 204 }));
    this.route('POST', /^\/media$/, (call) =>
      json(
        {
          id: '00000000-0000-4000-8000-00000000a001',
          size: (call.body as Uint8Array).length,
          content_type: 'application/octet-stream',
          sha256: '',
          created_at: '2026-11-28T12:00:00Z',
        },
        201,
      ),
    );
  }

  route(method: string, pattern: RegExp, handler: Handler) {
    this.routes.unshift([method, pattern, handler]);
  }

  /** Issues an access token and a refresh token for the user, remembered until used. */
  issue(userId: string) {
    this.issued += 1;
    const refresh = `refresh-${this.issued}`;
    this.refreshTokens.set(refresh, userId);
    return {
      access_token: `access-${this.issued}`,
      refresh_token: refresh,
      token_type: 'Bearer',
      expires_in: this.accessTtlSecs,
    };
  }

  /** `token_delivery=cookie`: the refresh token goes into the cookie, not the body. */
  private deliver(pair: ReturnType<FakeApi['issue']>, call: Call) {
    if (call.query.get('token_delivery') !== 'cookie') return pair;
    const { refresh_token: token, ...rest } = pair;
    this.refreshCookie = token;
    return rest;
  }

  callsTo(method: string, path: string | RegExp): Call[] {
    return this.calls.filter(
      (c) =>
        c.method === method && (typeof path === 'string' ? c.path === path : path.test(c.path)),
    );
  }

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const binary = request.headers.get('Content-Type') === 'application/octet-stream';
    const bytes = request.body ? new Uint8Array(await request.arrayBuffer()) : null;
    const text = bytes && !binary ? new TextDecoder().decode(bytes) : '';
    const call: Call = {
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      body: binary ? bytes : text ? JSON.parse(text) : undefined,
    };
    this.calls.push(call);
    for (const [method, pattern, handler] of this.routes) {
      const match = url.pathname.match(pattern);
      if (method === request.method && match) return handler(call, match);
    }
    return fail(404, 'no_route');
  };
}
