import { beforeEach, describe, expect, it } from 'vitest';
import { FakeSocket } from '../testing/fakeSocket';
import { FakePeer, FakeStream, FakeTrack, ManualTimers, settle } from '../testing/fakeRtc';
import { CallConnection, DISCONNECTED_GRACE_MS, type ConnectionEvents } from './connection';

function connection(videoCall = true) {
  const timers = new ManualTimers();
  const seen = {
    rooms: [] as string[][],
    streams: 0,
    connected: 0,
    lost: [] as string[],
    levels: [] as { me: boolean; userIds: string[] }[],
  };
  const events: ConnectionEvents = {
    onRoom: (room) => seen.rooms.push(room.map((p) => p.user_id)),
    onStreams: () => {
      seen.streams += 1;
    },
    onConnected: () => {
      seen.connected += 1;
    },
    onLost: (reason) => seen.lost.push(reason),
    onLevels: (me, userIds) => seen.levels.push({ me, userIds }),
  };
  const audio = new FakeTrack('audio');
  const video = new FakeTrack('video');
  const call = new CallConnection({
    url: 'ws://sfu.test/rtc',
    token: 'join token',
    audio: audio as unknown as MediaStreamTrack,
    video: videoCall ? (video as unknown as MediaStreamTrack) : null,
    videoCall,
    createPeer: () => new FakePeer() as unknown as RTCPeerConnection,
    connect: (url) => new FakeSocket(url, []),
    newStream: () => new FakeStream() as unknown as MediaStream,
    events,
    timers,
  });
  return { call, seen, timers };
}

async function opened(videoCall = true) {
  const setup = connection(videoCall);
  await setup.call.open();
  const socket = FakeSocket.last();
  socket.open();
  await settle();
  return { ...setup, socket, peer: FakePeer.last() };
}

const room = (...participants: [string, [string, string][]][]) => ({
  type: 'participants',
  participants: participants.map(([user_id, tracks]) => ({
    user_id,
    tracks: tracks.map(([mid, kind]) => ({ mid, kind })),
  })),
});

describe('a connection to the SFU', () => {
  beforeEach(() => {
    FakeSocket.reset();
    FakePeer.created = [];
  });

  it('offers its microphone and its camera in three simulcast layers, then answers the SFU', async () => {
    const { socket, peer } = await opened();
    expect(socket.url).toBe('ws://sfu.test/rtc?token=join%20token');
    expect(peer.transceivers.map((t) => [t.kind, t.init?.direction])).toEqual([
      ['audio', 'sendrecv'],
      ['video', 'sendrecv'],
    ]);
    expect(peer.transceivers[1]?.init?.sendEncodings?.map((e) => e.rid)).toEqual(['h', 'm', 'l']);
    expect(socket.sent).toEqual([{ type: 'offer', sdp: 'offer with 2 m-lines' }]);

    const opus = 'a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n';
    socket.receive({ type: 'answer', sdp: opus });
    socket.receive({ type: 'offer', sdp: opus });
    await settle();
    expect(peer.remote.map((d) => [d.type, d.sdp?.includes('usedtx=1')])).toEqual([
      ['answer', true],
      ['offer', true],
    ]);
    expect(socket.sent[1]).toEqual({ type: 'answer', sdp: 'answer 2' });
  });

  it('an audio call has no video m-line', async () => {
    const { peer } = await opened(false);
    expect(peer.transceivers.map((t) => t.kind)).toEqual(['audio']);
  });

  it('groups received tracks by person and asks for the layer that fits', async () => {
    const { call, socket, peer, seen } = await opened();
    peer.track('2', 'audio');
    peer.track('3', 'video');
    socket.receive(
      room([
        'bob',
        [
          ['2', 'audio'],
          ['3', 'video'],
        ],
      ]),
    );
    await settle();
    expect(seen.rooms).toEqual([['bob']]);
    expect(
      call
        .streamOf('bob')
        ?.getTracks()
        .map((t) => t.kind),
    ).toEqual(['audio', 'video']);
    // One person: the best layer.
    expect(socket.sent.at(-1)).toEqual({ type: 'layer', mid: '3', rid: 'h' });

    peer.track('4', 'video');
    peer.track('5', 'video');
    socket.receive(
      room(
        [
          'bob',
          [
            ['2', 'audio'],
            ['3', 'video'],
          ],
        ],
        ['cyd', [['4', 'video']]],
        ['dan', [['5', 'video']]],
      ),
    );
    await settle();
    // Three tiles: the middle layer for each.
    expect(socket.sent.slice(-3)).toEqual([
      { type: 'layer', mid: '3', rid: 'm' },
      { type: 'layer', mid: '4', rid: 'm' },
      { type: 'layer', mid: '5', rid: 'm' },
    ]);
    // Bob left: his stream goes.
    socket.receive(room(['cyd', [['4', 'video']]], ['dan', [['5', 'video']]]));
    await settle();
    expect(call.streamOf('bob')).toBeNull();
    call.setAudioOnly(true);
    expect(socket.sent.slice(-2)).toEqual([
      { type: 'layer', mid: '4', rid: 'l' },
      { type: 'layer', mid: '5', rid: 'l' },
    ]);
  });

  it('reports who speaks, by audio level', async () => {
    const { socket, peer, seen, timers } = await opened();
    peer.track('2', 'audio');
    socket.receive(room(['bob', [['2', 'audio']]]));
    await settle();
    peer.transceivers.find((t) => t.mid === '2')!.receiver.getSynchronizationSources = () => [
      { audioLevel: 0.4 },
    ];
    peer.stats = [{ type: 'media-source', kind: 'audio', audioLevel: 0.2 }];
    timers.advance(400);
    await settle();
    expect(seen.levels.at(-1)).toEqual({ me: true, userIds: ['bob'] });
  });

  it('counts as lost when ICE stays disconnected, when it fails, or when the socket drops', async () => {
    const first = await opened();
    first.peer.setState('connected');
    expect(first.seen.connected).toBe(1);
    first.peer.setState('disconnected');
    first.timers.advance(DISCONNECTED_GRACE_MS - 100);
    // Back in time: nothing lost.
    first.peer.setState('connected');
    first.timers.advance(1000);
    expect(first.seen.lost).toEqual([]);
    first.peer.setState('disconnected');
    first.timers.advance(DISCONNECTED_GRACE_MS);
    expect(first.seen.lost).toEqual(['the network dropped']);
    expect(first.peer.closed).toBe(true);

    const second = await opened();
    second.socket.serverClose(4408, 'timed out');
    second.socket.serverClose(4408, 'timed out');
    expect(second.seen.lost).toEqual(['timed out']);

    const third = await opened();
    third.peer.setState('failed');
    expect(third.seen.lost).toEqual(['the media connection failed']);
  });

  it('says leave when hanging up, and nothing when replaced by a rejoin', async () => {
    const hangUp = await opened();
    hangUp.call.leave();
    expect(hangUp.socket.sent.at(-1)).toEqual({ type: 'leave' });
    expect(hangUp.socket.closedWith?.code).toBe(1000);
    expect(hangUp.seen.lost).toEqual([]);

    const rejoin = await opened();
    rejoin.call.close();
    expect(rejoin.socket.sent.some((f) => (f as { type: string }).type === 'leave')).toBe(false);
    expect(rejoin.peer.closed).toBe(true);
  });
});
