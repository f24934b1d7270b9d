/**
 * Calls as a person makes them: start one from a chat (or join the one under way), answer or
 * decline one ringing, mute, camera, audio only, hang up. The api owns the call (ringing,
 * answered, over) and hands out join tokens; the SFU carries the media over a
 * {@link CallConnection}. When the network drops, this joins the same call again with a fresh
 * token (`POST /calls/{id}/accept` is a no-op for someone already in it) until the api says the
 * call is over; the SFU waits a grace period before it tells the api someone vanished, so a
 * 1:1 call survives a few seconds without network. When the call's SFU node dies, the api moves
 * the call to another node and says so (`media_moved`): this joins again at once, on the node the
 * new token names.
 */
import type { ParleyClient } from '@parley/sdk';
import type { Store } from '../createStore';
import { ApiRequestError, call, errorMessage } from '../features/apiError';
import type { IntervalTimers, SocketLike } from '../realtime';
import type { Action, AppState } from '../store';
import { CallConnection } from './connection';
import type { RoomParticipant } from './media';
import { endedText, type CallKind, type CallPeer, type IncomingCall } from './state';

export interface CallsOptions {
  client: ParleyClient;
  store: Store<AppState, Action>;
  /** The browser's media (`navigator.mediaDevices.getUserMedia`). */
  getUserMedia(constraints: MediaStreamConstraints): Promise<MediaStream>;
  createPeer(): RTCPeerConnection;
  connect(url: string): SocketLike;
  newStream(): MediaStream;
  timers: IntervalTimers;
  now(): number;
}

/** Rejoin attempts back off from 500 ms to this, and stop after {@link REJOIN_FOR_MS}. */
const REJOIN_MAX_DELAY_MS = 4000;
export const REJOIN_FOR_MS = 30_000;
/** How long a call rings on this screen at most (the api's own ring timeout is 45 s). */
export const RING_FOR_MS = 45_000;
/** A finished call's screen stays this long before it closes by itself. */
export const ENDED_SCREEN_MS = 2500;

/** What a phone's front camera gives a call (the SFU forwards up to this, or a smaller layer). */
const CAMERA: MediaTrackConstraints = {
  width: { ideal: 640 },
  height: { ideal: 480 },
  frameRate: { ideal: 24, max: 30 },
};

/** Refused by the api while rejoining: the call is over for you. */
function isFinal(error: unknown): boolean {
  return error instanceof ApiRequestError && error.status >= 400 && error.status < 500;
}

export class Calls {
  private connection: CallConnection | null = null;
  private local: MediaStream | null = null;
  /** Bumped for each call: late results of an earlier one are dropped. */
  private generation = 0;
  private rejoinTimer: unknown = null;
  /** The rejoin attempt that `rejoinTimer` waits to make. */
  private pendingRejoin: (() => void) | null = null;
  private endedTimer: unknown = null;
  private unsubscribe: () => void;

  constructor(private readonly options: CallsOptions) {
    let previous = options.store.getState().calls.current;
    // A call the api ended (`call.updated`) or a sign-out tears the media down.
    this.unsubscribe = options.store.subscribe(() => {
      const current = options.store.getState().calls.current;
      if (current === previous) return;
      const before = previous;
      previous = current;
      if (current?.phase === 'ended' && before?.phase !== 'ended') this.finish();
      if (!current && before) this.teardown();
      if (current && before && current.mediaMoves > before.mediaMoves) this.moveMedia();
    });
  }

  private get state(): AppState {
    return this.options.store.getState();
  }

  private dispatch(action: Action) {
    this.options.store.dispatch(action);
  }

  /** Your own camera and microphone, for the self view. */
  get localStream(): MediaStream | null {
    return this.local;
  }

  /** One other participant's audio and video. */
  streamOf(userId: string): MediaStream | null {
    return this.connection?.streamOf(userId) ?? null;
  }

  /** Calls a chat, or joins the call under way in it. */
  async start(chatId: string, kind: CallKind): Promise<void> {
    if (!this.beginIfFree(chatId, kind)) return;
    const generation = this.generation;
    // The camera starts while the api is asked: joining takes less time.
    const media = this.openMedia(kind);
    try {
      const started = await call(
        () => this.options.client.POST('/calls', { body: { chat_id: chatId, kind } }),
        {
          404: 'This chat is not available.',
          nobody_to_call: 'There is nobody else here to call.',
        },
      );
      await media;
      if (generation !== this.generation) return;
      this.dispatch({
        type: 'calls/joined',
        callId: started.id,
        ringing: started.status === 'ringing',
      });
      this.connect(started.sfu, started.kind === 'video');
    } catch (error) {
      await media.catch(() => undefined);
      this.failed(generation, error);
    }
  }

  /** Answers a call ringing for you. */
  async accept(incoming: IncomingCall): Promise<void> {
    if (!this.beginIfFree(incoming.chatId, incoming.kind)) return;
    const generation = this.generation;
    const media = this.openMedia(incoming.kind);
    try {
      const joined = await this.join(incoming.callId);
      await media;
      if (generation !== this.generation) return;
      this.dispatch({ type: 'calls/joined', callId: incoming.callId, ringing: false });
      this.connect(joined.sfu, incoming.kind === 'video');
    } catch (error) {
      await media.catch(() => undefined);
      this.dispatch({ type: 'calls/incomingGone', callId: incoming.callId });
      this.failed(generation, error);
    }
  }

  /** Declines a call ringing for you (it stops ringing here at once). */
  async reject(callId: string): Promise<void> {
    this.dispatch({ type: 'calls/incomingGone', callId });
    await call(() =>
      this.options.client.POST('/calls/{id}/reject', { params: { path: { id: callId } } }),
    ).catch(() => undefined);
  }

  /**
   * Stops ringing here without declining (a group call rings until it ends; after
   * {@link RING_FOR_MS} it can still be joined from its chat).
   */
  stopRinging(callId: string): void {
    this.dispatch({ type: 'calls/incomingGone', callId });
  }

  /** Hangs up: a 1:1 call ends for both, a group call goes on without you. */
  async hangUp(): Promise<void> {
    const current = this.state.calls.current;
    if (!current) return;
    this.connection?.leave();
    this.connection = null;
    this.dispatch({ type: 'calls/ended', reason: 'Call ended' });
    if (current.callId) {
      const id = current.callId;
      await call(() =>
        this.options.client.POST('/calls/{id}/end', { params: { path: { id } } }),
      ).catch(() => undefined);
    }
  }

  /** The tab is going away: leave the call (the SFU tells the api at once). */
  pageHidden(): void {
    this.connection?.leave();
    this.connection = null;
  }

  toggleMute(): void {
    const current = this.state.calls.current;
    if (!current) return;
    const muted = !current.muted;
    for (const track of this.local?.getAudioTracks() ?? []) track.enabled = !muted;
    this.dispatch({ type: 'calls/controls', muted });
  }

  /** Turns your camera off (it stops, and nothing is sent) or on again. */
  async toggleCamera(): Promise<void> {
    const current = this.state.calls.current;
    if (!current || current.kind !== 'video') return;
    if (current.cameraOff) await this.cameraOn();
    else await this.cameraOff();
    this.dispatch({ type: 'calls/controls', audioOnly: false });
    this.connection?.setAudioOnly(false);
  }

  /** Audio only: your camera off and nobody's video shown (the smallest layer is received). */
  async toggleAudioOnly(): Promise<void> {
    const current = this.state.calls.current;
    if (!current || current.kind !== 'video') return;
    const audioOnly = !current.audioOnly;
    if (audioOnly) await this.cameraOff();
    else await this.cameraOn();
    this.dispatch({ type: 'calls/controls', audioOnly });
    this.connection?.setAudioOnly(audioOnly);
  }

  /** Finds out whether a chat has a call under way (to offer "Join call" after a reload). */
  async refreshLive(chatId: string): Promise<void> {
    const { call: live } = await call(() =>
      this.options.client.GET('/calls', { params: { query: { chat_id: chatId } } }),
    );
    const over =
      !live || live.status === 'ended' || live.status === 'rejected' || live.status === 'missed';
    this.dispatch({
      type: 'calls/live',
      chatId,
      call: over ? null : { callId: live.id, kind: live.kind },
    });
  }

  /** The browser is back online: a rejoin waiting out its back-off goes now. */
  wake(): void {
    const attempt = this.pendingRejoin;
    if (!attempt || this.rejoinTimer === null) return;
    this.options.timers.clearTimeout(this.rejoinTimer);
    attempt();
  }

  /** Closes the screen of a call that ended. */
  dismiss(): void {
    if (this.state.calls.current?.phase === 'ended') this.dispatch({ type: 'calls/dismiss' });
  }

  dispose(): void {
    this.unsubscribe();
    this.teardown();
  }

  // --- internals ----------------------------------------------------------------------------

  private beginIfFree(chatId: string, kind: CallKind): boolean {
    const current = this.state.calls.current;
    // One call at a time: the one under way keeps going.
    if (current && current.phase !== 'ended') return false;
    this.teardown();
    this.generation += 1;
    this.dispatch({ type: 'calls/begin', chatId, kind });
    return true;
  }

  private async join(callId: string) {
    return call(
      () => this.options.client.POST('/calls/{id}/accept', { params: { path: { id: callId } } }),
      { 404: 'This call is not available.', call_over: 'The call is over.' },
    );
  }

  /** Microphone (and camera): a missing or refused camera still lets you talk. */
  private async openMedia(kind: CallKind) {
    const { getUserMedia } = this.options;
    let stream: MediaStream;
    try {
      stream = await getUserMedia({ audio: true, video: kind === 'video' ? CAMERA : false });
    } catch (error) {
      if (kind !== 'video') throw new Error(`No microphone: ${errorMessage(error)}`);
      stream = await getUserMedia({ audio: true, video: false }).catch((cause: unknown) => {
        throw new Error(`No microphone: ${errorMessage(cause)}`);
      });
      this.dispatch({ type: 'calls/controls', cameraOff: true });
    }
    this.local = stream;
  }

  private connect(sfu: { url: string; token: string }, videoCall: boolean) {
    const generation = this.generation;
    const connection = new CallConnection({
      url: sfu.url,
      token: sfu.token,
      audio: this.local?.getAudioTracks()[0] ?? null,
      video: this.local?.getVideoTracks()[0] ?? null,
      videoCall,
      createPeer: this.options.createPeer,
      connect: this.options.connect,
      newStream: this.options.newStream,
      timers: this.options.timers,
      events: {
        onRoom: (room) => this.roomChanged(generation, room),
        onStreams: () => this.dispatch({ type: 'calls/streams' }),
        onConnected: () => {
          if (generation === this.generation)
            this.dispatch({ type: 'calls/phase', phase: 'connected' });
        },
        onLost: () => {
          if (generation !== this.generation || this.connection !== connection) return;
          this.connection = null;
          this.rejoin(generation, this.options.now());
        },
        onLevels: (me, userIds) => {
          const current = this.state.calls.current;
          if (generation === this.generation && current)
            this.dispatch({ type: 'calls/speaking', me: me && !current.muted, userIds });
        },
      },
    });
    this.connection = connection;
    if (this.state.calls.current?.audioOnly) connection.setAudioOnly(true);
    connection.open().catch(() => {
      if (this.connection === connection) {
        this.connection = null;
        this.rejoin(generation, this.options.now());
      }
    });
  }

  private roomChanged(generation: number, room: RoomParticipant[]) {
    if (generation !== this.generation) return;
    const speaking = new Set(
      (this.state.calls.current?.peers ?? []).filter((p) => p.speaking).map((p) => p.userId),
    );
    const peers: CallPeer[] = room.map((p) => ({
      userId: p.user_id,
      video: p.tracks.some((t) => t.kind === 'video'),
      speaking: speaking.has(p.user_id),
    }));
    this.dispatch({ type: 'calls/peers', peers });
    if (this.state.calls.current?.phase === 'reconnecting')
      this.dispatch({ type: 'calls/phase', phase: 'connecting' });
  }

  /** The call now lives on another SFU node: leave the old one's connection and join again. */
  private moveMedia() {
    const current = this.state.calls.current;
    if (!current || current.phase === 'ended') return;
    if (this.rejoinTimer !== null) this.options.timers.clearTimeout(this.rejoinTimer);
    this.rejoinTimer = null;
    this.pendingRejoin = null;
    const connection = this.connection;
    this.connection = null;
    connection?.close();
    this.rejoin(this.generation, this.options.now());
  }

  /** Joins the same call again with a fresh token, backing off, until it works or is refused. */
  private rejoin(generation: number, since: number, attempt = 0) {
    const current = this.state.calls.current;
    if (generation !== this.generation || !current?.callId || current.phase === 'ended') return;
    this.dispatch({ type: 'calls/phase', phase: 'reconnecting' });
    const delay = attempt === 0 ? 0 : Math.min(500 * 2 ** (attempt - 1), REJOIN_MAX_DELAY_MS);
    const attemptNow = () => {
      this.rejoinTimer = null;
      this.pendingRejoin = null;
      const callId = current.callId ?? '';
      this.join(callId)
        .then((joined) => {
          if (generation !== this.generation || this.state.calls.current?.phase === 'ended') return;
          this.connect(joined.sfu, current.kind === 'video');
        })
        .catch((error: unknown) => {
          if (generation !== this.generation) return;
          if (isFinal(error)) {
            void this.endedBecause(callId);
          } else if (this.options.now() - since > REJOIN_FOR_MS) {
            this.dispatch({ type: 'calls/ended', reason: 'Connection lost' });
          } else {
            this.rejoin(generation, since, attempt + 1);
          }
        });
    };
    this.pendingRejoin = attemptNow;
    this.rejoinTimer = this.options.timers.setTimeout(attemptNow, delay);
  }

  /**
   * The api refused a rejoin: the call is over (the SFU often drops the peers before the
   * `call.updated` frame arrives), so ask the api how it ended.
   */
  private async endedBecause(callId: string) {
    const { data } = await this.options.client
      .GET('/calls/{id}', { params: { path: { id: callId } } })
      .catch(() => ({ data: undefined }));
    this.dispatch({ type: 'calls/ended', reason: endedText(data?.status) });
  }

  private async cameraOff() {
    for (const track of this.local?.getVideoTracks() ?? []) {
      track.stop();
      this.local?.removeTrack(track);
    }
    await this.connection?.replaceVideo(null);
    this.dispatch({ type: 'calls/controls', cameraOff: true });
  }

  private async cameraOn() {
    const camera = await this.options.getUserMedia({ video: CAMERA, audio: false });
    const track = camera.getVideoTracks()[0];
    if (!track) return;
    this.local?.addTrack(track);
    await this.connection?.replaceVideo(track);
    this.dispatch({ type: 'calls/controls', cameraOff: false });
  }

  private failed(generation: number, error: unknown) {
    if (generation !== this.generation) return;
    this.dispatch({ type: 'calls/ended', reason: errorMessage(error) });
  }

  /** The call is over: media off; the screen closes after a moment. */
  private finish() {
    this.connection?.close();
    this.connection = null;
    this.stopLocal();
    this.clearTimers();
    const generation = this.generation;
    this.endedTimer = this.options.timers.setTimeout(() => {
      this.endedTimer = null;
      if (generation === this.generation) this.dismiss();
    }, ENDED_SCREEN_MS);
  }

  private teardown() {
    this.connection?.close();
    this.connection = null;
    this.stopLocal();
    this.clearTimers();
  }

  private stopLocal() {
    for (const track of this.local?.getTracks() ?? []) track.stop();
    this.local = null;
  }

  private clearTimers() {
    if (this.rejoinTimer !== null) this.options.timers.clearTimeout(this.rejoinTimer);
    this.rejoinTimer = null;
    this.pendingRejoin = null;
    if (this.endedTimer !== null) this.options.timers.clearTimeout(this.endedTimer);
    this.endedTimer = null;
  }
}
