/**
 * The calls part of the UI state: calls ringing for you (from `call.ringing`, until a
 * `call.updated` says you answered, declined or the call is over), the chats known to have a
 * call under way (so their screen offers "Join"), and the call this tab is in. Media streams are
 * not state: the call's connection holds them (`Calls.streamOf`).
 */
import type { Action } from '../store';

export type CallKind = 'audio' | 'video';

export interface IncomingCall {
  callId: string;
  chatId: string;
  kind: CallKind;
  initiatorId: string;
}

/** Where this tab's call stands. */
export type CallPhase =
  /** Asking the api to start or answer the call. */
  | 'starting'
  /** Ringing the others; your media is already connecting. */
  | 'ringing'
  /** Media connecting to the SFU (at first, or after a reconnect). */
  | 'connecting'
  | 'connected'
  /** The network dropped: joining the same call again. */
  | 'reconnecting'
  | 'ended';

/** Someone else in the call, as the SFU reports the room. */
export interface CallPeer {
  userId: string;
  /** Whether a video track of theirs reaches us. */
  video: boolean;
  speaking: boolean;
}

export interface CurrentCall {
  callId: string | null;
  chatId: string;
  kind: CallKind;
  phase: CallPhase;
  /** Why it ended, in words (`null` while it goes on). */
  endedReason: string | null;
  /** The SFU's room, without you, in the order people came. */
  peers: CallPeer[];
  muted: boolean;
  cameraOff: boolean;
  /** No video either way: your camera is off and nobody's video is shown. */
  audioOnly: boolean;
  speaking: boolean;
  /** When media first connected (ms since the epoch). */
  connectedAt: number | null;
  /** Bumped whenever a remote stream is added or removed (tiles re-read them). */
  streams: number;
  /** Bumped when the api moved the call's media to another SFU node (`media_moved`): join again. */
  mediaMoves: number;
}

export interface CallsState {
  incoming: IncomingCall[];
  /** Chats with a call under way, by chat id. */
  live: Record<string, { callId: string; kind: CallKind }>;
  current: CurrentCall | null;
}

export const initialCallsState: CallsState = { incoming: [], live: {}, current: null };

export type CallsAction =
  | { type: 'calls/begin'; chatId: string; kind: CallKind }
  | { type: 'calls/joined'; callId: string; ringing: boolean }
  | { type: 'calls/phase'; phase: CallPhase }
  | { type: 'calls/peers'; peers: CallPeer[] }
  | { type: 'calls/speaking'; me: boolean; userIds: string[] }
  | { type: 'calls/controls'; muted?: boolean; cameraOff?: boolean; audioOnly?: boolean }
  | { type: 'calls/streams' }
  | { type: 'calls/ended'; reason: string }
  | { type: 'calls/dismiss' }
  | { type: 'calls/incomingGone'; callId: string }
  /** What `GET /calls?chat_id=` said about a chat (`call: null`: nothing under way). */
  | { type: 'calls/live'; chatId: string; call: { callId: string; kind: string } | null };

export const CALLS_ACTION_TYPES: Record<CallsAction['type'], true> = {
  'calls/begin': true,
  'calls/joined': true,
  'calls/phase': true,
  'calls/peers': true,
  'calls/speaking': true,
  'calls/controls': true,
  'calls/streams': true,
  'calls/ended': true,
  'calls/dismiss': true,
  'calls/incomingGone': true,
  'calls/live': true,
};

/** What the end of a call says, from `call.updated`'s `status`. */
export function endedText(status: string | null | undefined): string {
  switch (status) {
    case 'rejected':
      return 'Call declined';
    case 'missed':
      return 'No answer';
    default:
      return 'Call ended';
  }
}

function asKind(kind: string): CallKind {
  return kind === 'audio' ? 'audio' : 'video';
}

function withoutIncoming(state: CallsState, callId: string): CallsState {
  const incoming = state.incoming.filter((c) => c.callId !== callId);
  return incoming.length === state.incoming.length ? state : { ...state, incoming };
}

function withoutLive(state: CallsState, chatId: string): CallsState {
  if (!(chatId in state.live)) return state;
  const live = { ...state.live };
  delete live[chatId];
  return { ...state, live };
}

function updateCurrent(state: CallsState, change: Partial<CurrentCall>): CallsState {
  return state.current ? { ...state, current: { ...state.current, ...change } } : state;
}

function samePeers(a: CallPeer[], b: CallPeer[]): boolean {
  return (
    a.length === b.length &&
    a.every((p, i) => {
      const q = b[i];
      return !!q && p.userId === q.userId && p.video === q.video && p.speaking === q.speaking;
    })
  );
}

/** `me`: the signed-in user (frames about them mean this account answered or left elsewhere). */
export function reduceCalls(state: CallsState, action: Action, me: string): CallsState {
  switch (action.type) {
    case 'calls/begin':
      return {
        ...state,
        current: {
          callId: null,
          chatId: action.chatId,
          kind: action.kind,
          phase: 'starting',
          endedReason: null,
          peers: [],
          muted: false,
          cameraOff: action.kind === 'audio',
          audioOnly: action.kind === 'audio',
          speaking: false,
          connectedAt: null,
          streams: 0,
          mediaMoves: 0,
        },
      };
    case 'calls/joined': {
      if (!state.current) return state;
      const next = withoutIncoming(state, action.callId);
      return updateCurrent(next, {
        callId: action.callId,
        phase: action.ringing ? 'ringing' : 'connecting',
      });
    }
    case 'calls/phase': {
      const current = state.current;
      if (!current || current.phase === 'ended' || current.phase === action.phase) return state;
      // Ringing lasts until someone answers, even once your own media is connected.
      if (current.phase === 'ringing' && action.phase === 'connected' && current.peers.length === 0)
        return state;
      const connectedAt =
        action.phase === 'connected' ? (current.connectedAt ?? Date.now()) : current.connectedAt;
      return updateCurrent(state, { phase: action.phase, connectedAt });
    }
    case 'calls/peers': {
      const current = state.current;
      if (!current || samePeers(current.peers, action.peers)) return state;
      const answered = current.phase === 'ringing' && action.peers.length > 0;
      return updateCurrent(state, {
        peers: action.peers,
        ...(answered ? { phase: 'connected' as const, connectedAt: Date.now() } : {}),
      });
    }
    case 'calls/speaking': {
      const current = state.current;
      if (!current) return state;
      const speaking = new Set(action.userIds);
      const peers = current.peers.map((p) =>
        p.speaking === speaking.has(p.userId) ? p : { ...p, speaking: !p.speaking },
      );
      if (samePeers(peers, current.peers) && current.speaking === action.me) return state;
      return updateCurrent(state, { peers, speaking: action.me });
    }
    case 'calls/controls': {
      const change: Partial<CurrentCall> = {};
      if (action.muted !== undefined) change.muted = action.muted;
      if (action.cameraOff !== undefined) change.cameraOff = action.cameraOff;
      if (action.audioOnly !== undefined) change.audioOnly = action.audioOnly;
      return updateCurrent(state, change);
    }
    case 'calls/streams':
      return state.current ? updateCurrent(state, { streams: state.current.streams + 1 }) : state;
    case 'calls/ended':
      if (!state.current || state.current.phase === 'ended') return state;
      return updateCurrent(state, { phase: 'ended', endedReason: action.reason, peers: [] });
    case 'calls/dismiss':
      return state.current ? { ...state, current: null } : state;
    case 'calls/incomingGone':
      return withoutIncoming(state, action.callId);
    case 'calls/live': {
      if (!action.call) return withoutLive(state, action.chatId);
      const known = state.live[action.chatId];
      if (known?.callId === action.call.callId) return state;
      const live = { callId: action.call.callId, kind: asKind(action.call.kind) };
      return { ...state, live: { ...state.live, [action.chatId]: live } };
    }
    case 'auth/signedOut':
      return initialCallsState;
    case 'frame': {
      const { event } = action;
      if (event.type === 'call.ringing') {
        const { call_id: callId, chat_id: chatId, kind, initiator_id: initiatorId } = event.data;
        const live = { ...state.live, [chatId]: { callId, kind: asKind(kind) } };
        if (initiatorId === me || state.incoming.some((c) => c.callId === callId))
          return { ...state, live };
        const incoming = [...state.incoming, { callId, chatId, kind: asKind(kind), initiatorId }];
        return { ...state, live, incoming };
      }
      if (event.type === 'call.updated') {
        const { call_id: callId, chat_id: chatId, change, user_id: userId } = event.data;
        if (change === 'ended') {
          let next = withoutLive(withoutIncoming(state, callId), chatId);
          if (next.current?.callId === callId && next.current.phase !== 'ended') {
            next = updateCurrent(next, {
              phase: 'ended',
              endedReason: endedText(event.data.status),
              peers: [],
            });
          }
          return next;
        }
        // The call's SFU node died: the api placed its media on another one.
        if (change === 'media_moved' && state.current?.callId === callId)
          return updateCurrent(state, { mediaMoves: state.current.mediaMoves + 1 });
        // Answered or declined on another of your devices: it stops ringing here.
        if ((change === 'accepted' || change === 'rejected') && userId === me)
          return withoutIncoming(state, callId);
        return state;
      }
      return state;
    }
    default:
      return state;
  }
}

export function isCallsAction(action: { type: string }): action is CallsAction {
  return Object.hasOwn(CALLS_ACTION_TYPES, action.type);
}
