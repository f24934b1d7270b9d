import type { ServerEvent } from '@parley/sdk';
import { describe, expect, it } from 'vitest';
import { initialState, reduce, type Action, type AppState } from '../store';
import { ALICE, BOB, CHAT, DEVICE, GROUP, ME, user } from '../testing/fixtures';

const CALL = '00000000-0000-4000-8000-0000000000f1';

function signedIn(): AppState {
  return reduce(initialState, { type: 'auth/signedIn', user: user(ME, 'Me'), deviceId: DEVICE });
}

function frame(event: ServerEvent): Action {
  return { type: 'frame', event, me: ME, now: 0 };
}

const ringing = (initiator = ALICE, chat = CHAT): Action =>
  frame({
    type: 'call.ringing',
    data: { call_id: CALL, chat_id: chat, kind: 'video', initiator_id: initiator, created_at: '' },
  } as ServerEvent);

const updated = (data: Record<string, unknown>): Action =>
  frame({ type: 'call.updated', data: { call_id: CALL, chat_id: CHAT, ...data } } as ServerEvent);

function run(state: AppState, ...actions: Action[]): AppState {
  return actions.reduce(reduce, state);
}

describe('calls state', () => {
  it('rings for a call someone else started, until it is over', () => {
    const state = run(signedIn(), ringing());
    expect(state.calls.incoming).toEqual([
      { callId: CALL, chatId: CHAT, kind: 'video', initiatorId: ALICE },
    ]);
    expect(state.calls.live[CHAT]).toEqual({ callId: CALL, kind: 'video' });
    // The same frame again (a replay) rings once.
    expect(run(state, ringing()).calls.incoming).toHaveLength(1);
    const over = run(state, updated({ change: 'ended', status: 'missed' }));
    expect(over.calls.incoming).toEqual([]);
    expect(over.calls.live).toEqual({});
  });

  it('does not ring for your own call, and stops when another of your devices answers', () => {
    expect(run(signedIn(), ringing(ME)).calls.incoming).toEqual([]);
    const answeredElsewhere = run(
      signedIn(),
      ringing(),
      updated({ change: 'accepted', user_id: ME }),
    );
    expect(answeredElsewhere.calls.incoming).toEqual([]);
    // Someone else answering a group call does not stop it ringing for you.
    const other = run(
      signedIn(),
      ringing(ALICE, GROUP),
      updated({ change: 'accepted', user_id: BOB }),
    );
    expect(other.calls.incoming).toHaveLength(1);
  });

  it('follows your call from ringing to answered to its end', () => {
    let state = run(
      signedIn(),
      { type: 'calls/begin', chatId: CHAT, kind: 'video' },
      { type: 'calls/joined', callId: CALL, ringing: true },
      // Your own media connecting does not stop the ringing…
      { type: 'calls/phase', phase: 'connected' },
    );
    expect(state.calls.current?.phase).toBe('ringing');
    // …someone arriving in the room does.
    state = run(state, {
      type: 'calls/peers',
      peers: [{ userId: BOB, video: true, speaking: false }],
    });
    expect(state.calls.current?.phase).toBe('connected');
    expect(state.calls.current?.connectedAt).not.toBeNull();
    state = run(state, { type: 'calls/speaking', me: true, userIds: [BOB] });
    expect(state.calls.current?.speaking).toBe(true);
    expect(state.calls.current?.peers[0]?.speaking).toBe(true);
    state = run(state, { type: 'calls/controls', muted: true });
    expect(state.calls.current).toMatchObject({ muted: true, cameraOff: false });
    state = run(state, updated({ change: 'ended', status: 'rejected' }));
    expect(state.calls.current).toMatchObject({
      phase: 'ended',
      endedReason: 'Call declined',
      peers: [],
    });
    // Nothing moves an ended call back.
    expect(run(state, { type: 'calls/phase', phase: 'connected' })).toBe(state);
    expect(run(state, { type: 'calls/dismiss' }).calls.current).toBeNull();
  });

  it('starts a voice call with the camera off and audio only', () => {
    const state = run(signedIn(), { type: 'calls/begin', chatId: CHAT, kind: 'audio' });
    expect(state.calls.current).toMatchObject({
      cameraOff: true,
      audioOnly: true,
      phase: 'starting',
    });
  });

  it('takes what the api says about a chat’s call under way', () => {
    let state = run(signedIn(), {
      type: 'calls/live',
      chatId: GROUP,
      call: { callId: CALL, kind: 'audio' },
    });
    expect(state.calls.live[GROUP]).toEqual({ callId: CALL, kind: 'audio' });
    state = run(state, { type: 'calls/live', chatId: GROUP, call: null });
    expect(state.calls.live).toEqual({});
  });

  it('forgets everything at sign-out', () => {
    const state = run(signedIn(), ringing(), { type: 'auth/signedOut' });
    expect(state.calls).toEqual({ incoming: [], live: {}, current: null });
  });
});
