/**
 * The `/ws` connection: authenticates with `Sec-WebSocket-Protocol: bearer, <token>` (never a
 * token in the URL), remembers the last feed cursor it saw and reconnects with `?cursor=` so the
 * server replays exactly what came after it, backs off with jitter between attempts, pings so a
 * dead connection is noticed, and re-authenticates over the open socket after token refreshes.
 */
import {
  CLOSE_UNAUTHORIZED,
  clientFrameToJson,
  parseServerFrame,
  webSocketProtocols,
  webSocketUrl,
  type ClientFrame,
  type ServerFrame,
} from '@parley/sdk';
import { backoffDelay } from './backoff';
import type { ConnectionStatus } from './store';

/** The part of the browser's `WebSocket` used here. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

export interface IntervalTimers {
  setTimeout(handler: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RealtimeOptions {
  baseUrl: string;
  /** The current access token (refreshed when needed); `null` = signed out, do not connect. */
  getToken: () => Promise<string | null>;
  connect: SocketFactory;
  onFrame: (frame: ServerFrame) => void;
  onStatus: (status: ConnectionStatus) => void;
  /**
   * The socket opened. `resumed`: it asked for a replay from a cursor. `reconnected`: an earlier
   * socket of this run closed, so something may have been missed (without a cursor the server
   * starts from the present and replays nothing).
   */
  onOpen?: (info: { resumed: boolean; reconnected: boolean }) => void;
  /**
   * The server closed the socket with 4001 (`session_revoked`, `token_expired`,
   * `invalid_token`) or the upgrade keeps failing. Resolve `true` to reconnect (e.g. after a
   * successful refresh), `false` to stay down (signed out).
   */
  onAuthProblem: (code: string) => Promise<boolean>;
  timers?: IntervalTimers;
  random?: () => number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
}

const OPEN = 1;
/** Our own close code when the server stopped answering pings. */
export const CLOSE_PONG_TIMEOUT = 4000;
/** Upgrades that failed in a row before the session itself is checked. */
const HANDSHAKE_FAILURES_BEFORE_CHECK = 2;

export class RealtimeConnection {
  /** The last feed cursor seen: a reconnect replays from here. */
  cursor: string | null = null;
  private socket: SocketLike | null = null;
  private running = false;
  private attempt = 0;
  private failedHandshakes = 0;
  private reconnectTimer: unknown = null;
  private pingTimer: unknown = null;
  private pongTimer: unknown = null;
  private lastError: string | null = null;
  private openedBefore = false;
  private readonly timers: IntervalTimers;
  private readonly random: () => number;

  constructor(private readonly options: RealtimeOptions) {
    this.timers = options.timers ?? {
      setTimeout: (handler, ms) => globalThis.setTimeout(handler, ms),
      clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    this.random = options.random ?? Math.random;
  }

  get isOpen(): boolean {
    return this.socket?.readyState === OPEN;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.openedBefore = false;
    void this.open();
  }

  /** Closes the socket for good (logout). The cursor is forgotten. */
  stop(): void {
    this.running = false;
    this.cursor = null;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close(1000, 'bye');
    }
    this.options.onStatus('idle');
  }

  /** Skips the wait before the next attempt (the browser came back online, the tab is visible). */
  reconnectNow(): void {
    if (!this.running || this.socket) return;
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    void this.open();
  }

  /** Sends a frame if the socket is open; `false` otherwise (typing is best effort). */
  send(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false;
    this.socket.send(clientFrameToJson(frame));
    return true;
  }

  /** A fresh access token for the open socket (answered with `auth.ok`). */
  reauthenticate(token: string): void {
    this.send({ type: 'auth', token });
  }

  private async open(): Promise<void> {
    this.options.onStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let token: string | null;
    try {
      token = await this.options.getToken();
    } catch {
      token = null;
      if (this.running) this.scheduleReconnect();
      return;
    }
    if (!this.running) return;
    if (!token) {
      this.running = false;
      this.options.onStatus('idle');
      return;
    }
    const resumed = this.cursor !== null;
    const socket = this.options.connect(
      webSocketUrl(this.options.baseUrl, this.cursor),
      webSocketProtocols(token),
    );
    this.socket = socket;
    this.lastError = null;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.failedHandshakes = 0;
      this.options.onStatus('open');
      this.schedulePing();
      const reconnected = this.openedBefore;
      this.openedBefore = true;
      this.options.onOpen?.({ resumed, reconnected });
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      let frame: ServerFrame;
      try {
        frame = parseServerFrame(event.data);
      } catch (error) {
        console.warn('ignoring a frame that does not parse', error);
        return;
      }
      if (frame.cursor !== null) this.cursor = frame.cursor;
      if (frame.event.type === 'pong') this.clearPongDeadline();
      if (frame.event.type === 'error') this.lastError = frame.event.data.code;
      this.options.onFrame(frame);
    };
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.clearTimers();
      if (!this.running) return;
      if (event.code === CLOSE_UNAUTHORIZED) {
        void this.afterAuthProblem(this.lastError ?? (event.reason || 'unauthorized'));
        return;
      }
      if (!opened) {
        // A refused upgrade looks like any network failure to a browser: check the session
        // itself now and then, so a revoked one does not retry forever.
        this.failedHandshakes += 1;
        if (this.failedHandshakes >= HANDSHAKE_FAILURES_BEFORE_CHECK) {
          this.failedHandshakes = 0;
          void this.afterAuthProblem('handshake_failed');
          return;
        }
      }
      this.scheduleReconnect();
    };
  }

  private async afterAuthProblem(code: string) {
    this.options.onStatus('reconnecting');
    let again = false;
    try {
      again = await this.options.onAuthProblem(code);
    } catch {
      again = true;
    }
    if (!this.running) return;
    if (again) {
      this.scheduleReconnect();
    } else {
      this.stop();
    }
  }

  private scheduleReconnect() {
    this.options.onStatus('reconnecting');
    const delay = backoffDelay(this.attempt, this.random);
    this.attempt += 1;
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
  }

  private schedulePing() {
    const interval = this.options.pingIntervalMs ?? 25_000;
    this.pingTimer = this.timers.setTimeout(() => {
      this.pingTimer = null;
      if (!this.send({ type: 'ping' })) return;
      this.pongTimer = this.timers.setTimeout(() => {
        this.pongTimer = null;
        this.socket?.close(CLOSE_PONG_TIMEOUT, 'no pong');
        // Some browsers take long to report the close of a dead connection: act now.
        const socket = this.socket;
        if (socket?.onclose) socket.onclose({ code: CLOSE_PONG_TIMEOUT, reason: 'no pong' });
      }, this.options.pongTimeoutMs ?? 10_000);
      this.schedulePing();
    }, interval);
  }

  private clearPongDeadline() {
    if (this.pongTimer !== null) this.timers.clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  private clearTimers() {
    for (const timer of [this.reconnectTimer, this.pingTimer, this.pongTimer]) {
      if (timer !== null) this.timers.clearTimeout(timer);
    }
    this.reconnectTimer = this.pingTimer = this.pongTimer = null;
  }
}
