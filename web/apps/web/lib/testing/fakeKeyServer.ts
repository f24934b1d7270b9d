/**
 * An in-memory stand-in for the api's key directory, to-device queues, chats and media, for
 * several users and devices at once: enough for the end-to-end encryption flows between real
 * cores (`@parley/core` in Node). Each caller is a `fetch` whose bearer token names its user and
 * device (`<user>/<device>`). Shapes and status codes follow `openapi/openapi.json`.
 */
import { createParleyClient, type MessageView, type ParleyClient } from '@parley/sdk';

interface DeviceEntry {
  user_id: string;
  device_id: string;
  display_name: string | null;
  identity_keys: { curve25519: string; ed25519: string; signature: string };
  one_time_keys: { key_id: string; curve25519: string; signature: string }[];
  fallback_key: { key_id: string; curve25519: string; signature: string } | null;
}

interface QueuedToDevice {
  id: string;
  recipient: string;
  sender_id: string;
  sender_device_id: string;
  ciphertext: string;
  created_at: string;
}

const json = (body: unknown, status = 200) => Response.json(body, { status });
const fail = (status: number, code: string) => json({ error: { code, message: code } }, status);

let sequence = 0;
function newId(): string {
  sequence += 1;
  return `00000000-0000-4000-8000-${sequence.toString(16).padStart(12, '0')}`;
}

export class FakeKeyServer {
  readonly devices = new Map<string, DeviceEntry>();
  readonly toDevice: QueuedToDevice[] = [];
  readonly chats = new Map<string, string[]>();
  readonly messages = new Map<string, MessageView[]>();
  readonly media = new Map<string, Uint8Array>();
  readonly uploads = new Map<string, Uint8Array[]>();
  /** Every request, as `METHOD /path` with the caller's user id. */
  readonly log: { caller: string; call: string }[] = [];
  /** Users whose keys no one else may query (`POST /keys/query` answers 404). */
  readonly hidden = new Set<string>();
  /**
   * Called before a `PATCH /media/uploads/{id}`: return a number to keep only that many bytes
   * of the chunk and fail the request as a dropped connection would.
   */
  cutUpload: ((offset: number, length: number) => number | null) | null = null;

  /** A chat with these members. */
  chat(members: string[]): string {
    const id = newId();
    this.chats.set(id, members);
    this.messages.set(id, []);
    return id;
  }

  client(userId: string, deviceId: string): ParleyClient {
    return createParleyClient({
      baseUrl: 'http://api.test',
      getToken: () => `${userId}/${deviceId}`,
      fetch: (input, init) => this.handle(input, init),
    });
  }

  private visible(caller: string, user: string): boolean {
    if (caller === user) return true;
    if (this.hidden.has(user)) return false;
    return [...this.chats.values()].some(
      (members) => members.includes(caller) && members.includes(user),
    );
  }

  private listing(userId: string) {
    return {
      user_id: userId,
      devices: [...this.devices.values()]
        .filter((entry) => entry.user_id === userId)
        .map(({ device_id, display_name, identity_keys }) => ({
          device_id,
          display_name,
          identity_keys,
        })),
    };
  }

  private async handle(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const path = url.pathname;
    const token = request.headers.get('Authorization')?.replace(/^Bearer /, '') ?? '';
    const [caller = '', callerDevice = ''] = token.split('/');
    this.log.push({ caller, call: `${request.method} ${path}` });
    const route = (method: string, pattern: RegExp) =>
      request.method === method ? path.match(pattern) : null;
    const body = async <T>() => (await request.json()) as T;
    let m: RegExpMatchArray | null;

    if ((m = route('PUT', /^\/keys\/devices\/([^/]+)$/))) {
      const upload = await body<{
        display_name?: string;
        identity_keys: DeviceEntry['identity_keys'];
        one_time_keys?: DeviceEntry['one_time_keys'];
        fallback_key?: DeviceEntry['fallback_key'];
      }>();
      const key = `${caller}/${m[1]}`;
      const entry = this.devices.get(key) ?? {
        user_id: caller,
        device_id: m[1]!,
        display_name: upload.display_name ?? null,
        identity_keys: upload.identity_keys,
        one_time_keys: [],
        fallback_key: null,
      };
      if (JSON.stringify(entry.identity_keys) !== JSON.stringify(upload.identity_keys)) {
        return fail(409, 'identity_keys_changed');
      }
      entry.one_time_keys.push(...(upload.one_time_keys ?? []));
      entry.fallback_key = upload.fallback_key ?? entry.fallback_key;
      this.devices.set(key, entry);
      return json({
        device_id: m[1],
        one_time_key_count: entry.one_time_keys.length,
        has_fallback_key: entry.fallback_key !== null,
      });
    }
    if (route('POST', /^\/keys\/query$/)) {
      const { user_ids: users } = await body<{ user_ids: string[] }>();
      if (users.some((user) => !this.visible(caller, user))) return fail(404, 'not_found');
      return json({ users: users.map((user) => this.listing(user)) });
    }
    if ((m = route('GET', /^\/keys\/users\/([^/]+)$/))) {
      if (!this.visible(caller, m[1]!)) return fail(404, 'not_found');
      return json(this.listing(m[1]!));
    }
    if (route('POST', /^\/keys\/claim$/)) {
      const { devices } = await body<{ devices: { user_id: string; device_id: string }[] }>();
      const keys = [];
      for (const { user_id, device_id } of devices) {
        const entry = this.devices.get(`${user_id}/${device_id}`);
        if (!entry) continue;
        const oneTimeKey = entry.one_time_keys.shift();
        const claimed = oneTimeKey ?? entry.fallback_key;
        if (!claimed) continue;
        keys.push({
          user_id,
          device_id,
          ...claimed,
          fallback: !oneTimeKey,
          remaining: entry.one_time_keys.length,
        });
      }
      return json({ keys });
    }
    if (route('POST', /^\/to-device$/)) {
      const { messages } = await body<{
        messages: { user_id: string; device_id: string; ciphertext: string }[];
      }>();
      const ids = messages.map((item) => {
        const id = newId();
        this.toDevice.push({
          id,
          recipient: `${item.user_id}/${item.device_id}`,
          sender_id: caller,
          sender_device_id: callerDevice,
          ciphertext: item.ciphertext,
          created_at: new Date().toISOString(),
        });
        return id;
      });
      return json({ ids });
    }
    if (route('GET', /^\/to-device$/)) {
      const limit = Number(url.searchParams.get('limit') ?? 100);
      const items = this.toDevice
        .filter((item) => item.recipient === token)
        .slice(0, limit)
        .map(({ id, sender_id, sender_device_id, ciphertext, created_at }) => ({
          id,
          sender_id,
          sender_device_id,
          ciphertext,
          created_at,
        }));
      return json({ items, next_cursor: null });
    }
    if (route('POST', /^\/to-device\/ack$/)) {
      const { ids } = await body<{ ids: string[] }>();
      for (let i = this.toDevice.length - 1; i >= 0; i -= 1) {
        const item = this.toDevice[i]!;
        if (item.recipient === token && ids.includes(item.id)) this.toDevice.splice(i, 1);
      }
      return new Response(null, { status: 204 });
    }
    if ((m = route('GET', /^\/chats\/([^/]+)$/))) {
      const members = this.chats.get(m[1]!);
      if (!members?.includes(caller)) return fail(404, 'not_found');
      return json({
        id: m[1],
        type: members.length === 2 ? 'direct' : 'group',
        name: null,
        created_by: members[0],
        created_at: '2026-11-28T12:00:00Z',
        last_seq: this.messages.get(m[1]!)?.length ?? 0,
        last_activity_at: '2026-11-28T12:00:00Z',
        members: members.map((user_id) => ({
          user_id,
          role: 'member',
          joined_at: '2026-11-28T12:00:00Z',
          read_up_to_seq: 0,
        })),
      });
    }
    if ((m = route('POST', /^\/chats\/([^/]+)\/messages$/))) {
      const chatId = m[1]!;
      if (!this.chats.get(chatId)?.includes(caller)) return fail(404, 'not_found');
      const sent = await body<{
        client_msg_id: string;
        ciphertext: string;
        algorithm: string;
        media_ids?: string[];
      }>();
      const list = this.messages.get(chatId)!;
      const message: MessageView = {
        id: newId(),
        chat_id: chatId,
        sender_id: caller,
        sender_device_id: callerDevice,
        seq: list.length + 1,
        client_msg_id: sent.client_msg_id,
        ciphertext: sent.ciphertext,
        algorithm: sent.algorithm,
        media_ids: sent.media_ids ?? [],
        reply_to: null,
        created_at: new Date().toISOString(),
        deleted: false,
      };
      list.push(message);
      return json(message, 201);
    }
    if (route('POST', /^\/media$/)) {
      const bytes = new Uint8Array(await request.arrayBuffer());
      const id = newId();
      this.media.set(id, bytes);
      return json(this.mediaView(id, bytes), 201);
    }
    if (route('POST', /^\/media\/uploads$/)) {
      const id = newId();
      this.uploads.set(id, []);
      return json({ upload_id: id, offset: 0 }, 201);
    }
    if ((m = route('GET', /^\/media\/uploads\/([^/]+)$/))) {
      const chunks = this.uploads.get(m[1]!);
      if (!chunks) return fail(404, 'not_found');
      return json({ upload_id: m[1], offset: chunks.reduce((n, c) => n + c.length, 0) });
    }
    if ((m = route('PATCH', /^\/media\/uploads\/([^/]+)$/))) {
      const chunks = this.uploads.get(m[1]!);
      if (!chunks) return fail(404, 'not_found');
      const current = chunks.reduce((n, c) => n + c.length, 0);
      const offset = Number(request.headers.get('Upload-Offset'));
      const bytes = new Uint8Array(await request.arrayBuffer());
      if (offset !== current) return fail(409, 'offset_mismatch');
      const kept = this.cutUpload?.(offset, bytes.length) ?? null;
      if (kept !== null) {
        chunks.push(bytes.slice(0, kept));
        throw new TypeError('fetch failed: connection reset');
      }
      chunks.push(bytes);
      return json({ upload_id: m[1], offset: current + bytes.length });
    }
    if ((m = route('POST', /^\/media\/uploads\/([^/]+)\/complete$/))) {
      const chunks = this.uploads.get(m[1]!);
      if (!chunks) return fail(404, 'not_found');
      const size = chunks.reduce((n, c) => n + c.length, 0);
      const bytes = new Uint8Array(size);
      let at = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
      this.uploads.delete(m[1]!);
      const id = newId();
      this.media.set(id, bytes);
      return json(this.mediaView(id, bytes), 201);
    }
    if ((m = route('GET', /^\/media\/([^/]+)$/))) {
      const bytes = this.media.get(m[1]!);
      if (!bytes) return fail(404, 'not_found');
      // Delivered in uneven pieces, as a network would.
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < bytes.length; at += 70_001) {
            controller.enqueue(bytes.slice(at, at + 70_001));
          }
          controller.close();
        },
      });
      return new Response(stream, {
        status: 200,
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Length': String(bytes.length),
        },
      });
    }
    return fail(404, 'no_route');
  }

  private mediaView(id: string, bytes: Uint8Array) {
    return {
      id,
      size: bytes.length,
      content_type: 'application/octet-stream',
      sha256: '',
      created_at: new Date().toISOString(),
    };
  }
}
