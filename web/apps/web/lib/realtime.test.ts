import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RealtimeConnection, type RealtimeOptions } from './realtime';
import type { ConnectionStatus } from './store';
import { connectFake, FakeSocket } from './testing/fakeSocket';

const MESSAGE_FRAME = (cursor: string) => ({
  type: 'chat.read',
  data: {
    chat_id: '0190a3a0-0000-7000-8000-000000000002',
    user_id: '0190a3a0-0000-7000-8000-000000000003',
    up_to_seq: 7,
  },
  cursor,
});

function setUp(overrides: Partial<RealtimeOptions> = {}) {
  const statuses: ConnectionStatus[] = [];
  const frames: unknown[] = [];
  const opened: { resumed: boolean; reconnected: boolean }[] = [];
  const onAuthProblem = vi.fn(async () => true);
  let token = 'token-1';
  const connection = new RealtimeConnection({
    baseUrl: 'https://chat.example',
    getToken: async () => token,
    connect: connectFake,
    onFrame: (frame) => frames.push(frame),
    onStatus: (status) => statuses.push(status),
    onOpen: (info) => opened.push(info),
    onAuthProblem,
    random: () => 0,
    ...overrides,
  });
  return {
    connection,
    statuses,
    frames,
    opened,
    onAuthProblem,
    setToken: (t: string) => (token = t),
  };
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.reset();
});
afterEach(() => vi.useRealTimers());

describe('RealtimeConnection', () => {
  it('sends the token as a subprotocol, never in the URL', async () => {
    const { connection, statuses } = setUp();
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    const socket = FakeSocket.last();
    expect(socket.url).toBe('wss://chat.example/ws');
    expect(socket.protocols).toEqual(['bearer', 'token-1']);
    socket.open();
    expect(statuses).toEqual(['connecting', 'open']);
  });

  it('reconnects with backoff and replays from the last cursor it saw', async () => {
    const { connection, frames, opened, statuses, setToken } = setUp();
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.last().open();
    FakeSocket.last().receive(MESSAGE_FRAME('41'));
    FakeSocket.last().receive({
      type: 'typing',
      data: {
        chat_id: '0190a3a0-0000-7000-8000-000000000002',
        user_id: '0190a3a0-0000-7000-8000-000000000003',
      },
      cursor: null,
    });
    FakeSocket.last().receive(MESSAGE_FRAME('42'));
    expect(frames).toHaveLength(3);
    expect(connection.cursor).toBe('42');

    setToken('token-2');
    FakeSocket.last().serverClose(1006);
    expect(statuses.at(-1)).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(249);
    expect(FakeSocket.created).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.created).toHaveLength(2);
    const second = FakeSocket.last();
    expect(second.url).toBe('wss://chat.example/ws?cursor=42');
    expect(second.protocols).toEqual(['bearer', 'token-2']);
    second.open();
    expect(opened).toEqual([
      { resumed: false, reconnected: false },
      { resumed: true, reconnected: true },
    ]);
  });

  it('backs off further after each failed attempt and starts over once connected', async () => {
    const { connection } = setUp();
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.last().open();
    const delays: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const before = FakeSocket.created.length;
      FakeSocket.last().serverClose(1006);
      let waited = 0;
      while (FakeSocket.created.length === before) {
        await vi.advanceTimersByTimeAsync(50);
        waited += 50;
      }
      delays.push(waited);
      if (i === 0) FakeSocket.last().open();
    }
    // 250 after a connection that had opened; then a failed upgrade each time.
    expect(delays[0]).toBe(250);
    expect(delays.slice(1)).toEqual([250, 500, 1000]);
  });

  it('hands a 4001 close to the app with the error that came before it', async () => {
    const { connection, onAuthProblem } = setUp();
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.last().open();
    FakeSocket.last().receive({
      type: 'error',
      data: { code: 'token_expired', message: 'x' },
      cursor: null,
    });
    FakeSocket.last().serverClose(4001, 'access token expired');
    await vi.advanceTimersByTimeAsync(0);
    expect(onAuthProblem).toHaveBeenCalledWith('token_expired');
    await vi.advanceTimersByTimeAsync(500);
    expect(FakeSocket.created).toHaveLength(2);
  });

  it('stays down when the app says the session is over', async () => {
    const { connection, statuses } = setUp({ onAuthProblem: async () => false });
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.last().open();
    FakeSocket.last().serverClose(4001, 'session revoked');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.created).toHaveLength(1);
    expect(statuses.at(-1)).toBe('idle');
  });

  it('checks the session when upgrades keep failing', async () => {
    const { connection, onAuthProblem } = setUp();
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.last().serverClose(1006);
    await vi.advanceTimersByTimeAsync(250);
    expect(onAuthProblem).not.toHaveBeenCalled();
    FakeSocket.last().serverClose(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(onAuthProblem).toHaveBeenCalledWith('handshake_failed');
  });

  it('pings, and gives up on a connection that does not answer', async () => {
    const { connection } = setUp({ pingIntervalMs: 1000, pongTimeoutMs: 500 });
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    const socket = FakeSocket.last();
    socket.open();
    await vi.advanceTimersByTimeAsync(1000);
    expect(socket.sent).toEqual([{ type: 'ping' }]);
    socket.receive({ type: 'pong', data: null, cursor: null });
    await vi.advanceTimersByTimeAsync(1000);
    expect(socket.sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(socket.closedWith).toEqual({ code: 4000, reason: 'no pong' });
    await vi.advanceTimersByTimeAsync(250);
    expect(FakeSocket.created).toHaveLength(2);
  });

  it('re-authenticates the open socket and ignores frames it cannot parse', async () => {
    const { connection, frames } = setUp();
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    const socket = FakeSocket.last();
    socket.open();
    connection.reauthenticate('token-2');
    expect(socket.sent).toEqual([{ type: 'auth', token: 'token-2' }]);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    socket.receive('not json');
    socket.receive({ type: 'chat.read', data: { chat_id: 'nope' }, cursor: '9' });
    expect(frames).toEqual([]);
    expect(connection.cursor).toBeNull();
    warn.mockRestore();
  });

  it('closes for good on stop', async () => {
    const { connection, statuses } = setUp();
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    const socket = FakeSocket.last();
    socket.open();
    connection.stop();
    expect(socket.closedWith).toEqual({ code: 1000, reason: 'bye' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.created).toHaveLength(1);
    expect(statuses.at(-1)).toBe('idle');
    expect(connection.send({ type: 'ping' })).toBe(false);
  });
});
