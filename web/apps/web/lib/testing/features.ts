/** A store, an SDK client on the fake api and a feature context, for the features' tests. */
import { createParleyClient } from '@parley/sdk';
import { createStore } from '../createStore';
import type { FeatureContext, SafetySource } from '../features/context';
import { initialState, reduce } from '../store';
import { FakeApi } from './fakeApi';
import { DEVICE, ME, user } from './fixtures';

export interface Upload {
  contentType: string | null;
  bytes: Uint8Array;
}

export function featureHarness(api = new FakeApi()) {
  const uploads: Upload[] = [];
  let now = Date.UTC(2026, 10, 28, 12, 0, 0);
  // The fake api reads JSON bodies; media bodies are bytes, answered here.
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    if (request.method === 'POST' && url.pathname === '/media') {
      const bytes = new Uint8Array(await request.arrayBuffer());
      uploads.push({ contentType: request.headers.get('Content-Type'), bytes });
      api.calls.push({
        method: 'POST',
        path: '/media',
        query: url.searchParams,
        headers: request.headers,
        body: undefined,
      });
      return Response.json(
        {
          id: `00000000-0000-4000-8000-${(0xa00 + uploads.length).toString(16).padStart(12, '0')}`,
          size: bytes.length,
          content_type: request.headers.get('Content-Type') ?? 'application/octet-stream',
          sha256: '00',
          created_at: new Date(now).toISOString(),
        },
        { status: 201 },
      );
    }
    return api.fetch(request);
  };
  const client = createParleyClient({
    baseUrl: 'http://api.test',
    getToken: () => 'access-token',
    fetch,
  });
  const store = createStore(reduce, initialState);
  store.dispatch({ type: 'auth/signedIn', user: user(ME, 'Me'), deviceId: DEVICE });
  const ensured: string[][] = [];
  const synced: string[][] = [];
  // A stand-in for the crypto side of safety numbers: two devices each, a fixed number.
  const safety: SafetySource & { digits: string; listed: Record<string, number> } = {
    digits: '123456789012345678901234567890098765432109876543210987654321',
    listed: {},
    ready: async () => undefined,
    syncDevices: async (ids) => {
      synced.push(ids);
    },
    listedDevices: async (userId) =>
      Array.from({ length: safety.listed[userId] ?? 2 }, (_, i) => ({
        user_id: userId,
        device_id: `device-${i}`,
      })),
    safetyNumber: async () => safety.digits.replace(/(\d{5})(?=\d)/g, '$1 '),
  };
  let chatsLoaded = 0;
  const context: FeatureContext = {
    client,
    store,
    ensureUsers: async (ids) => {
      ensured.push(ids);
    },
    loadChats: async () => {
      chatsLoaded += 1;
    },
    loadDetail: async () => undefined,
    now: () => now,
    safety,
  };
  return {
    api,
    client,
    store,
    context,
    uploads,
    ensured,
    synced,
    safety,
    get chatsLoaded() {
      return chatsLoaded;
    },
    advance(ms: number) {
      now += ms;
    },
    get now() {
      return now;
    },
  };
}

export const noContent = () => new Response(null, { status: 204 });
export const apiError = (status: number, code: string, message = code) =>
  Response.json({ error: { code, message } }, { status });
