import { beforeEach, describe, expect, it } from 'vitest';
import { featureHarness } from '../testing/features';
import { FakeSocket } from '../testing/fakeSocket';
import { FakePeer, FakeStream, FakeTrack, ManualTimers, settle } from '../testing/fakeRtc';
import { BOB, CHAT } from '../testing/fixtures';
import { Calls, ENDED_SCREEN_MS } from './calls';

const CALL = '00000000-0000-4000-8000-0000000000f1';
const NEXT_CALL = '00000000-0000-4000-8000-0000000000f2';

function callView(status: string, kind = 'video') {
  return {
    id: CALL,
    chat_id: CHAT,
    kind,
    initiator_id: BOB,
    status,
    participants: [],
    created_at: '2026-12-06T10:00:00Z',
    ended_at: null,
  };
}

function setup() {
  const harness = featureHarness();
  const { api } = harness;
  let tokens = 0;
  const sfu = () => {
    tokens += 1;
    return { url: 'ws://sfu.test/rtc', token: `token-${tokens}` };
  };
  const answers = { accept: 200 };
  api.route('POST', /^\/calls$/, () =>
    Response.json({ ...callView('ringing'), sfu: sfu() }, { status: 201 }),
  );
  api.route('POST', /^\/calls\/[^/]+\/accept$/, () =>
    answers.accept === 200
      ? Response.json({ call: callView('active'), sfu: sfu() })
      : Response.json(
          { error: { code: 'call_over', message: 'the call is over' } },
          { status: answers.accept },
        ),
  );
  api.route('GET', /^\/calls\/[^/]+$/, () => Response.json(callView('missed')));
  for (const action of ['reject', 'end'])
    api.route('POST', new RegExp(`^/calls/[^/]+/${action}$`), () =>
      Response.json(callView('ended')),
    );
  api.route('GET', /^\/calls$/, (call) =>
    Response.json({
      call:
        call.query.get('chat_id') === CHAT
          ? { ...callView('active', 'audio'), id: NEXT_CALL }
          : null,
    }),
  );
  const timers = new ManualTimers();
  const media: FakeStream[] = [];
  const calls = new Calls({
    client: harness.client,
    store: harness.store,
    getUserMedia: async (constraints) => {
      const tracks = [new FakeTrack('audio')];
      if (constraints.video) tracks.push(new FakeTrack('video'));
      const stream = new FakeStream(tracks);
      media.push(stream);
      return stream as unknown as MediaStream;
    },
    createPeer: () => new FakePeer() as unknown as RTCPeerConnection,
    connect: (url) => new FakeSocket(url, []),
    newStream: () => new FakeStream() as unknown as MediaStream,
    timers,
    now: () => timers.now,
  });
  const current = () => harness.store.getState().calls.current;
  return { ...harness, calls, timers, media, answers, current };
}

/** Lets the requests and the connection's first steps finish. */
async function flush() {
  for (let i = 0; i < 5; i += 1) {
    await settle(20);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

describe('calls', () => {
  beforeEach(() => {
    FakeSocket.reset();
    FakePeer.created = [];
  });

  it('starts a call: asks the api, then connects to the SFU with the join token', async () => {
    const { calls, api, current } = setup();
    await calls.start(CHAT, 'video');
    await flush();
    expect(api.callsTo('POST', '/calls')[0]?.body).toEqual({ chat_id: CHAT, kind: 'video' });
    expect(current()).toMatchObject({ callId: CALL, phase: 'ringing', kind: 'video' });
    expect(FakeSocket.last().url).toBe('ws://sfu.test/rtc?token=token-1');
    // A second call while this one runs is refused (one at a time).
    await calls.start(CHAT, 'audio');
    expect(api.callsTo('POST', '/calls')).toHaveLength(1);
  });

  it('rejoins with a fresh token when the network drops, until the api says the call is over', async () => {
    const { calls, api, current, timers, answers, media } = setup();
    await calls.accept({ callId: CALL, chatId: CHAT, kind: 'video', initiatorId: BOB });
    await flush();
    expect(current()?.phase).toBe('connecting');
    FakeSocket.last().serverClose(1006, '');
    expect(current()?.phase).toBe('reconnecting');
    timers.advance(0);
    await flush();
    expect(api.callsTo('POST', `/calls/${CALL}/accept`)).toHaveLength(2);
    expect(FakeSocket.last().url).toContain('token=token-2');

    // Offline: the next try waits out its back-off, unless the browser is back online.
    answers.accept = 503;
    FakeSocket.last().serverClose(1006, '');
    timers.advance(0);
    await flush();
    expect(api.callsTo('POST', `/calls/${CALL}/accept`)).toHaveLength(3);
    answers.accept = 200;
    calls.wake();
    await flush();
    expect(api.callsTo('POST', `/calls/${CALL}/accept`)).toHaveLength(4);
    expect(FakeSocket.last().url).toContain('token=token-3');

    answers.accept = 409;
    FakeSocket.last().serverClose(4408, 'the call ended');
    timers.advance(0);
    await flush();
    // Why it ended comes from the api (the SFU's drop can beat the `call.updated` frame).
    expect(current()).toMatchObject({ phase: 'ended', endedReason: 'No answer' });
    // The camera and microphone are off; the screen closes by itself.
    expect(
      media[0]?.getTracks().every((t) => (t as unknown as FakeTrack).readyState === 'ended'),
    ).toBe(true);
    timers.advance(ENDED_SCREEN_MS);
    expect(current()).toBeNull();
  });

  it('joins again at once when the api moves the call to another SFU node', async () => {
    const { calls, api, current, store, timers } = setup();
    await calls.accept({ callId: CALL, chatId: CHAT, kind: 'video', initiatorId: BOB });
    await flush();
    const old = FakeSocket.last();
    old.open();
    const frame = (callId: string) =>
      store.dispatch({
        type: 'frame',
        me: store.getState().auth.userId ?? '',
        now: 0,
        event: {
          type: 'call.updated',
          data: { call_id: callId, chat_id: CHAT, change: 'media_moved' },
        },
      });
    // Another call's move is not this one's.
    frame(NEXT_CALL);
    await flush();
    expect(api.callsTo('POST', `/calls/${CALL}/accept`)).toHaveLength(1);

    frame(CALL);
    // No back-off: the new node is known now.
    timers.advance(0);
    await flush();
    expect(api.callsTo('POST', `/calls/${CALL}/accept`)).toHaveLength(2);
    expect(old.closedWith).not.toBeNull();
    expect(FakeSocket.last()).not.toBe(old);
    expect(FakeSocket.last().url).toContain('token=token-2');
    expect(current()?.phase).not.toBe('ended');
  });

  it('hangs up: leave to the SFU, end to the api', async () => {
    const { calls, api, current } = setup();
    await calls.start(CHAT, 'video');
    await flush();
    const socket = FakeSocket.last();
    socket.open();
    await calls.hangUp();
    expect(socket.sent.at(-1)).toEqual({ type: 'leave' });
    expect(api.callsTo('POST', `/calls/${CALL}/end`)).toHaveLength(1);
    expect(current()?.phase).toBe('ended');
  });

  it('mutes, turns the camera off and on, and goes audio only', async () => {
    const { calls, current, media } = setup();
    await calls.start(CHAT, 'video');
    await flush();
    calls.toggleMute();
    expect(current()?.muted).toBe(true);
    expect((media[0]?.getAudioTracks()[0] as unknown as FakeTrack).enabled).toBe(false);
    await calls.toggleCamera();
    expect(current()?.cameraOff).toBe(true);
    expect(media[0]?.getVideoTracks()).toEqual([]);
    expect(FakePeer.last().transceivers[1]?.sender.track).toBeNull();
    await calls.toggleCamera();
    expect(current()?.cameraOff).toBe(false);
    expect(FakePeer.last().transceivers[1]?.sender.track).not.toBeNull();
    await calls.toggleAudioOnly();
    expect(current()).toMatchObject({ audioOnly: true, cameraOff: true });
  });

  it('declines a call ringing here and learns a chat’s call under way', async () => {
    const { calls, api, store } = setup();
    store.dispatch({
      type: 'frame',
      me: store.getState().auth.userId ?? '',
      now: 0,
      event: {
        type: 'call.ringing',
        data: { call_id: CALL, chat_id: CHAT, kind: 'video', initiator_id: BOB, created_at: '' },
      },
    });
    expect(store.getState().calls.incoming).toHaveLength(1);
    await calls.reject(CALL);
    expect(store.getState().calls.incoming).toEqual([]);
    expect(api.callsTo('POST', `/calls/${CALL}/reject`)).toHaveLength(1);

    await calls.refreshLive(CHAT);
    expect(store.getState().calls.live[CHAT]).toEqual({ callId: NEXT_CALL, kind: 'audio' });
    await calls.refreshLive('00000000-0000-4000-8000-0000000000c9');
    expect(store.getState().calls.live['00000000-0000-4000-8000-0000000000c9']).toBeUndefined();
  });
});
