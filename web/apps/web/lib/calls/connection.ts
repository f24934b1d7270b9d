/**
 * One connection to the SFU for one call: the browser's `RTCPeerConnection` and the signaling
 * WebSocket (API.md, "SFU signaling"). The browser's send tracks go in its first offer; after
 * the answer only the SFU offers and this answers, so there is never glare. The SFU's
 * `participants` frames say whose media each receiving `mid` carries: remote tracks are
 * grouped into one `MediaStream` per person from them.
 *
 * It reports what happens (room changes, streams, connected, lost) and decides nothing about
 * the call: the `Calls` manager rejoins or ends. Both the peer connection and the socket are
 * made by injected factories, so unit tests drive it with fakes.
 */
import type { IntervalTimers, SocketLike } from '../realtime';
import {
  chooseLayer,
  readParticipants,
  SIMULCAST_LAYERS,
  withOpusDtx,
  type Layer,
  type RoomParticipant,
} from './media';

export interface ConnectionEvents {
  /** The room changed (everyone but you). */
  onRoom(participants: RoomParticipant[]): void;
  /** A remote stream gained or lost a track. */
  onStreams(): void;
  /** Media flows (ICE and DTLS are up). */
  onConnected(): void;
  /** The connection ended without {@link CallConnection.leave}/{@link CallConnection.close}. */
  onLost(reason: string, code: number | null): void;
  /** Who is speaking now: you, and the others by user id. */
  onLevels(me: boolean, userIds: string[]): void;
}

export interface ConnectionOptions {
  /** The SFU's signaling URL and your join token, from the api. */
  url: string;
  token: string;
  /** Your microphone (and camera) stream; its tracks may be `null` (no device, camera off). */
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  /** Whether this call has video at all (an audio call has no video m-line). */
  videoCall: boolean;
  createPeer(): RTCPeerConnection;
  connect(url: string): SocketLike;
  /** Makes an empty stream to gather one person's tracks in. */
  newStream(): MediaStream;
  events: ConnectionEvents;
  timers: IntervalTimers;
}

/** How long ICE may stay `disconnected` before the connection counts as lost. */
export const DISCONNECTED_GRACE_MS = 3000;
/** Levels are read this often; loss (for the layer choice) every {@link LOSS_EVERY} reads. */
const LEVEL_EVERY_MS = 400;
const LOSS_EVERY = 5;
/** An audio level (0..1) above this counts as speaking. */
export const SPEAKING_LEVEL = 0.03;

interface SignalFrame {
  type?: unknown;
  sdp?: unknown;
  participants?: unknown;
  reason?: unknown;
  code?: unknown;
}

export class CallConnection {
  private readonly pc: RTCPeerConnection;
  private socket: SocketLike | null = null;
  /** Frames are handled one after another: each SDP step awaits the previous one. */
  private queue: Promise<void> = Promise.resolve();
  private finished = false;
  private room: RoomParticipant[] = [];
  private readonly tracksByMid = new Map<string, MediaStreamTrack>();
  private readonly streams = new Map<string, MediaStream>();
  /** The layer last asked for, by our receiving mid. */
  private readonly layers = new Map<string, Layer>();
  private videoSender: RTCRtpSender | null = null;
  private audioOnly = false;
  private lossRatio = 0;
  private lastLoss = { lost: 0, received: 0 };
  private levelTimer: unknown = null;
  private levelTicks = 0;
  private disconnectedTimer: unknown = null;
  private connected = false;

  constructor(private readonly options: ConnectionOptions) {
    this.pc = options.createPeer();
  }

  /** Adds your tracks, opens the signaling socket and sends the offer. */
  async open(): Promise<void> {
    const { options, pc } = this;
    pc.addTransceiver(options.audio ?? 'audio', { direction: 'sendrecv' });
    if (options.videoCall) {
      const transceiver = pc.addTransceiver(options.video ?? 'video', {
        direction: 'sendrecv',
        sendEncodings: SIMULCAST_LAYERS,
      });
      this.videoSender = transceiver.sender;
    }
    pc.ontrack = (event) => this.trackArrived(event);
    pc.onconnectionstatechange = () => this.connectionChanged();
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    if (this.finished) return;
    const separator = options.url.includes('?') ? '&' : '?';
    const socket = options.connect(
      `${options.url}${separator}token=${encodeURIComponent(options.token)}`,
    );
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: 'offer', sdp: pc.localDescription?.sdp ?? offer.sdp }));
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      let frame: SignalFrame;
      try {
        frame = JSON.parse(event.data) as SignalFrame;
      } catch {
        return;
      }
      this.queue = this.queue.then(() => this.handle(frame)).catch(() => undefined);
    };
    socket.onclose = (event) =>
      this.lost(event.reason || 'the call server closed the connection', event.code);
    socket.onerror = () => undefined;
    this.levelTimer = options.timers.setTimeout(() => this.readLevels(), LEVEL_EVERY_MS);
  }

  private async handle(frame: SignalFrame) {
    if (this.finished) return;
    const { pc } = this;
    switch (frame.type) {
      case 'answer':
        if (typeof frame.sdp === 'string')
          await pc.setRemoteDescription({ type: 'answer', sdp: withOpusDtx(frame.sdp) });
        break;
      case 'offer':
        if (typeof frame.sdp !== 'string') return;
        await pc.setRemoteDescription({ type: 'offer', sdp: withOpusDtx(frame.sdp) });
        await pc.setLocalDescription(await pc.createAnswer());
        if (!this.finished)
          this.socket?.send(JSON.stringify({ type: 'answer', sdp: pc.localDescription?.sdp }));
        break;
      case 'participants':
        this.room = readParticipants(frame.participants);
        this.regroup();
        this.options.events.onRoom(this.room);
        this.sendLayers();
        break;
      default:
        break;
    }
  }

  private trackArrived(event: RTCTrackEvent) {
    const mid = event.transceiver.mid;
    if (!mid) return;
    this.tracksByMid.set(mid, event.track);
    event.track.onended = () => {
      if (this.tracksByMid.get(mid) === event.track) this.tracksByMid.delete(mid);
      this.regroup();
    };
    this.regroup();
  }

  /** Puts each received track in its owner's stream, by the room's mid map. */
  private regroup() {
    let changed = false;
    const wanted = new Map<string, MediaStreamTrack[]>();
    for (const participant of this.room) {
      const tracks = participant.tracks
        .map((t) => this.tracksByMid.get(t.mid))
        .filter((t): t is MediaStreamTrack => !!t && t.readyState !== 'ended');
      wanted.set(participant.user_id, tracks);
    }
    for (const [userId, stream] of this.streams) {
      if (!wanted.has(userId)) {
        this.streams.delete(userId);
        changed = true;
        continue;
      }
      for (const track of stream.getTracks()) {
        if (!wanted.get(userId)?.includes(track)) {
          stream.removeTrack(track);
          changed = true;
        }
      }
    }
    for (const [userId, tracks] of wanted) {
      let stream = this.streams.get(userId);
      if (!stream) {
        if (tracks.length === 0) continue;
        stream = this.options.newStream();
        this.streams.set(userId, stream);
        changed = true;
      }
      for (const track of tracks) {
        if (!stream.getTracks().includes(track)) {
          stream.addTrack(track);
          changed = true;
        }
      }
    }
    if (changed) this.options.events.onStreams();
  }

  /** Asks the SFU for the layer that fits each video tile (see {@link chooseLayer}). */
  private sendLayers() {
    const videoMids = this.room.flatMap((p) => p.tracks.filter((t) => t.kind === 'video'));
    const layer = chooseLayer(videoMids.length, this.lossRatio, this.audioOnly);
    for (const { mid } of videoMids) {
      if (this.layers.get(mid) === layer) continue;
      this.layers.set(mid, layer);
      this.socket?.send(JSON.stringify({ type: 'layer', mid, rid: layer }));
    }
  }

  private connectionChanged() {
    const state = this.pc.connectionState;
    if (state === 'connected') {
      this.clearDisconnected();
      if (!this.connected) {
        this.connected = true;
        this.options.events.onConnected();
      }
    } else if (state === 'failed') {
      this.lost('the media connection failed', null);
    } else if (state === 'disconnected' && this.disconnectedTimer === null) {
      this.disconnectedTimer = this.options.timers.setTimeout(() => {
        this.disconnectedTimer = null;
        if (this.pc.connectionState !== 'connected') this.lost('the network dropped', null);
      }, DISCONNECTED_GRACE_MS);
    }
  }

  private clearDisconnected() {
    if (this.disconnectedTimer !== null) this.options.timers.clearTimeout(this.disconnectedTimer);
    this.disconnectedTimer = null;
  }

  private async readLevels() {
    this.levelTimer = null;
    if (this.finished) return;
    try {
      const speaking: string[] = [];
      for (const participant of this.room) {
        const audio = participant.tracks.find((t) => t.kind === 'audio');
        const receiver = audio ? this.receiverOf(audio.mid) : null;
        const level = receiver?.getSynchronizationSources?.()[0]?.audioLevel ?? 0;
        if (level > SPEAKING_LEVEL) speaking.push(participant.user_id);
      }
      let me = false;
      this.levelTicks += 1;
      if (this.levelTicks % LOSS_EVERY === 0 || this.levelTicks === 1) {
        me = await this.readStats();
      }
      this.options.events.onLevels(me, speaking);
    } finally {
      if (!this.finished)
        this.levelTimer = this.options.timers.setTimeout(() => this.readLevels(), LEVEL_EVERY_MS);
    }
  }

  /** Loss on received video (for the layer choice) and your own microphone's level. */
  private async readStats(): Promise<boolean> {
    const report = await this.pc.getStats();
    let lost = 0;
    let received = 0;
    let myLevel = 0;
    report.forEach((entry: Record<string, unknown>) => {
      if (entry.type === 'inbound-rtp' && entry.kind === 'video') {
        lost += Number(entry.packetsLost ?? 0);
        received += Number(entry.packetsReceived ?? 0);
      } else if (entry.type === 'media-source' && entry.kind === 'audio') {
        myLevel = Math.max(myLevel, Number(entry.audioLevel ?? 0));
      }
    });
    const newLost = Math.max(0, lost - this.lastLoss.lost);
    const newReceived = Math.max(0, received - this.lastLoss.received);
    this.lastLoss = { lost, received };
    const ratio = newLost + newReceived > 0 ? newLost / (newLost + newReceived) : 0;
    if (ratio !== this.lossRatio) {
      this.lossRatio = ratio;
      this.sendLayers();
    }
    return myLevel > SPEAKING_LEVEL;
  }

  private receiverOf(mid: string): RTCRtpReceiver | null {
    return this.pc.getTransceivers().find((t) => t.mid === mid)?.receiver ?? null;
  }

  /** The stream of one other participant (`null` until a track of theirs arrived). */
  streamOf(userId: string): MediaStream | null {
    return this.streams.get(userId) ?? null;
  }

  /** Audio-only mode: the smallest layer of everyone's video (it is not shown). */
  setAudioOnly(audioOnly: boolean): void {
    this.audioOnly = audioOnly;
    this.sendLayers();
  }

  /** Sends this camera track instead (`null`: none; the transceiver stays for later). */
  async replaceVideo(track: MediaStreamTrack | null): Promise<void> {
    await this.videoSender?.replaceTrack(track);
  }

  /** Hangs up: tells the SFU you left, then closes. */
  leave(): void {
    if (this.socket && this.socket.readyState === 1 && !this.finished) {
      this.socket.send(JSON.stringify({ type: 'leave' }));
    }
    this.close();
  }

  /** Closes without a `leave` (a rejoin replaces this connection; the call goes on). */
  close(): void {
    if (this.finished) return;
    this.finished = true;
    this.clearDisconnected();
    if (this.levelTimer !== null) this.options.timers.clearTimeout(this.levelTimer);
    this.levelTimer = null;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.onmessage = null;
      this.socket.close(1000, 'closed');
    }
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
    this.streams.clear();
    this.tracksByMid.clear();
  }

  private lost(reason: string, code: number | null) {
    if (this.finished) return;
    this.close();
    this.options.events.onLost(reason, code);
  }
}
