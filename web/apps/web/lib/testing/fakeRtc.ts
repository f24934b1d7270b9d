/**
 * Stand-ins for the browser's WebRTC objects, as much as `lib/calls` uses of them: a peer
 * connection that records descriptions and transceivers, media tracks and streams, and timers
 * the test fires by hand.
 */
import type { IntervalTimers } from '../realtime';

export class FakeTrack {
  enabled = true;
  readyState: 'live' | 'ended' = 'live';
  onended: (() => void) | null = null;
  constructor(readonly kind: 'audio' | 'video') {}
  stop() {
    this.readyState = 'ended';
  }
}

export class FakeStream {
  private tracks: FakeTrack[];
  constructor(tracks: FakeTrack[] = []) {
    this.tracks = [...tracks];
  }
  getTracks() {
    return [...this.tracks];
  }
  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === 'audio');
  }
  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === 'video');
  }
  addTrack(track: FakeTrack) {
    this.tracks.push(track);
  }
  removeTrack(track: FakeTrack) {
    this.tracks = this.tracks.filter((t) => t !== track);
  }
}

interface FakeTransceiver {
  mid: string | null;
  kind: string;
  init: RTCRtpTransceiverInit | undefined;
  sender: { track: unknown; replaceTrack(track: unknown): Promise<void> };
  receiver: { getSynchronizationSources(): { audioLevel: number }[] };
}

export class FakePeer {
  static created: FakePeer[] = [];
  transceivers: FakeTransceiver[] = [];
  local: RTCSessionDescriptionInit | null = null;
  remote: RTCSessionDescriptionInit[] = [];
  connectionState: RTCPeerConnectionState = 'new';
  ontrack: ((event: unknown) => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  closed = false;
  /** Audio level by mid, for `getSynchronizationSources`. */
  levels: Record<string, number> = {};
  stats: Record<string, unknown>[] = [];

  constructor() {
    FakePeer.created.push(this);
  }

  static last(): FakePeer {
    const peer = FakePeer.created[FakePeer.created.length - 1];
    if (!peer) throw new Error('no peer connection');
    return peer;
  }

  addTransceiver(trackOrKind: FakeTrack | string, init?: RTCRtpTransceiverInit) {
    const kind = typeof trackOrKind === 'string' ? trackOrKind : trackOrKind.kind;
    const transceiver: FakeTransceiver = {
      mid: String(this.transceivers.length),
      kind,
      init,
      sender: {
        track: typeof trackOrKind === 'string' ? null : trackOrKind,
        replaceTrack: async (track) => {
          transceiver.sender.track = track;
        },
      },
      receiver: {
        getSynchronizationSources: () => {
          const level = this.levels[transceiver.mid ?? ''];
          return level === undefined ? [] : [{ audioLevel: level }];
        },
      },
    };
    this.transceivers.push(transceiver);
    return transceiver;
  }

  getTransceivers() {
    return this.transceivers;
  }

  async createOffer() {
    return { type: 'offer', sdp: `offer with ${this.transceivers.length} m-lines` };
  }

  async createAnswer() {
    return { type: 'answer', sdp: `answer ${this.remote.length}` };
  }

  async setLocalDescription(description: RTCSessionDescriptionInit) {
    this.local = description;
  }

  get localDescription() {
    return this.local;
  }

  async setRemoteDescription(description: RTCSessionDescriptionInit) {
    this.remote.push(description);
  }

  async getStats() {
    return new Map(this.stats.map((s, i) => [String(i), s]));
  }

  /** A remote track arrives on a receiving mid (as after the SFU's offer). */
  track(mid: string, kind: 'audio' | 'video') {
    const track = new FakeTrack(kind);
    const transceiver = { mid, kind, receiver: { getSynchronizationSources: () => [] } };
    this.transceivers.push(transceiver as unknown as FakeTransceiver);
    this.ontrack?.({ track, transceiver });
    return track;
  }

  setState(state: RTCPeerConnectionState) {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }

  close() {
    this.closed = true;
    this.connectionState = 'closed';
  }
}

/** Timers fired by the test: `run()` fires everything due (in order), `advance(ms)` moves time. */
export class ManualTimers implements IntervalTimers {
  now = 0;
  private next = 1;
  private pending = new Map<number, { at: number; handler: () => void }>();

  setTimeout(handler: () => void, ms: number): unknown {
    const id = this.next;
    this.next += 1;
    this.pending.set(id, { at: this.now + ms, handler });
    return id;
  }

  clearTimeout(handle: unknown) {
    this.pending.delete(handle as number);
  }

  advance(ms: number) {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.pending.entries()]
        .filter(([, t]) => t.at <= until)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.now = due[1].at;
      due[1].handler();
    }
    this.now = until;
  }
}

/** Lets queued promise callbacks run. */
export async function settle(rounds = 10) {
  for (let i = 0; i < rounds; i += 1) await Promise.resolve();
}
