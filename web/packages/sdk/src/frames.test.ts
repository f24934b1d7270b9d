import { describe, expect, it } from 'vitest';
import {
  clientFrameToJson,
  FrameError,
  KNOWN_TYPES,
  parseServerFrame,
  serializeServerFrame,
  webSocketProtocols,
  webSocketUrl,
} from './frames';

/**
 * One sample per frame type: the same samples as the Rust SDK's `sdk/src/frames.rs` tests,
 * shaped like what the server writes.
 */
const SAMPLES = [
  String.raw`{"type":"message.created","data":{"id":"0190a3a0-0000-7000-8000-000000000001","chat_id":"0190a3a0-0000-7000-8000-000000000002","sender_id":"0190a3a0-0000-7000-8000-000000000003","seq":7,"client_msg_id":"c-1","ciphertext":"aGVsbG8=","algorithm":"parley.megolm.v1","media_ids":[],"reply_to":null,"created_at":"2026-11-28T10:00:00+00:00","deleted":false},"cursor":"41"}`,
  String.raw`{"type":"message.deleted","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","seq":7,"message_id":"0190a3a0-0000-7000-8000-000000000001","for":"everyone"},"cursor":"42"}`,
  String.raw`{"type":"chat.read","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_id":"0190a3a0-0000-7000-8000-000000000003","up_to_seq":7},"cursor":"43"}`,
  String.raw`{"type":"chat.member_added","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_ids":["0190a3a0-0000-7000-8000-000000000004"],"added_by":"0190a3a0-0000-7000-8000-000000000003"},"cursor":"44"}`,
  String.raw`{"type":"chat.member_removed","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_id":"0190a3a0-0000-7000-8000-000000000004","removed_by":"0190a3a0-0000-7000-8000-000000000003"},"cursor":"45"}`,
  String.raw`{"type":"chat.member_updated","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_id":"0190a3a0-0000-7000-8000-000000000004","role":"admin"},"cursor":"46"}`,
  String.raw`{"type":"user.updated","data":{"user_id":"0190a3a0-0000-7000-8000-000000000003","name":"Ada L.","avatar_media_id":null},"cursor":"53"}`,
  String.raw`{"type":"call.ringing","data":{"call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002","kind":"video","initiator_id":"0190a3a0-0000-7000-8000-000000000003","created_at":"2026-11-28T10:01:00+00:00"},"cursor":"47"}`,
  String.raw`{"type":"call.updated","data":{"change":"left","user_id":"0190a3a0-0000-7000-8000-000000000004","reason":"hung_up","call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002"},"cursor":"48"}`,
  String.raw`{"type":"notification.created","data":{"id":"0190a3a0-0000-7000-8000-000000000006","kind":"missed_call","data":{"call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002"},"created_at":"2026-11-28T10:02:00+00:00","read":false},"cursor":"49"}`,
  String.raw`{"type":"typing","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_id":"0190a3a0-0000-7000-8000-000000000003"},"cursor":null}`,
  String.raw`{"type":"pong","data":null,"cursor":null}`,
  String.raw`{"type":"auth.ok","data":{"expires_at":"2026-11-28T10:15:00+00:00"},"cursor":null}`,
  String.raw`{"type":"error","data":{"code":"session_revoked","message":"this session has been signed out"},"cursor":null}`,
  String.raw`{"type":"to_device","data":{"id":"0190a3a0-0000-7000-8000-000000000007","sender_id":"0190a3a0-0000-7000-8000-000000000003","sender_device_id":"0190a3a0-0000-7000-8000-000000000008","ciphertext":"{\"algorithm\":\"parley.olm.v1\",\"sender_key\":\"k\",\"type\":0,\"body\":\"b\"}","created_at":"2026-11-28T10:03:00+00:00"},"cursor":"50"}`,
  String.raw`{"type":"device_list.changed","data":{"user_id":"0190a3a0-0000-7000-8000-000000000003"},"cursor":"51"}`,
  String.raw`{"type":"one_time_keys.low","data":{"device_id":"0190a3a0-0000-7000-8000-000000000008","remaining":3},"cursor":"52"}`,
];

describe('parseServerFrame', () => {
  it('parses a sample of every frame type', () => {
    const seen: string[] = [];
    for (const sample of SAMPLES) {
      const frame = parseServerFrame(sample);
      expect(frame.event.type, sample).not.toBe('unknown');
      seen.push(frame.event.type);
      // Serialising gives the same JSON back (as values: key order aside).
      expect(JSON.parse(serializeServerFrame(frame))).toEqual(JSON.parse(sample));
      expect(parseServerFrame(serializeServerFrame(frame))).toEqual(frame);
    }
    expect(seen).toEqual(KNOWN_TYPES);
  });

  it('gives frames their data and cursor', () => {
    const frame = parseServerFrame(SAMPLES[0]!);
    expect(frame.cursor).toBe('41');
    if (frame.event.type !== 'message.created') throw new Error('not a message');
    expect(frame.event.data.seq).toBe(7);
    expect(frame.event.data.sender_device_id).toBeUndefined();
    const toDevice = parseServerFrame(SAMPLES[14]!);
    if (toDevice.event.type !== 'to_device') throw new Error('not to-device');
    expect(toDevice.event.data.ciphertext.startsWith('{"algorithm":"parley.olm.v1"')).toBe(true);
    expect(parseServerFrame('{"type":"pong","data":null,"cursor":null}')).toEqual({
      event: { type: 'pong', data: null },
      cursor: null,
    });
  });

  it('keeps an unknown frame type instead of refusing it', () => {
    expect(parseServerFrame('{"type":"future.thing","data":{"x":1},"cursor":"9"}')).toEqual({
      event: { type: 'unknown', kind: 'future.thing', data: { x: 1 } },
      cursor: '9',
    });
  });

  it('refuses a known frame with bad data', () => {
    expect(() =>
      parseServerFrame('{"type":"chat.read","data":{"chat_id":"nope"},"cursor":"1"}'),
    ).toThrow(FrameError);
    expect(() => parseServerFrame('{"type":"typing","data":null}')).toThrow(FrameError);
    const message = JSON.parse(SAMPLES[0]!);
    message.data.seq = '7';
    expect(() => parseServerFrame(JSON.stringify(message))).toThrow(/seq/);
  });

  it('refuses what is not a frame', () => {
    expect(() => parseServerFrame('not json')).toThrow(FrameError);
    expect(() => parseServerFrame('[1]')).toThrow(FrameError);
    expect(() => parseServerFrame('{"data":{}}')).toThrow(/type/);
    expect(() => parseServerFrame('{"type":"pong","cursor":5}')).toThrow(/cursor/);
  });

  it('reads enum values it does not know as other', () => {
    const frame = parseServerFrame(
      '{"type":"call.updated","data":{"call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002","change":"transferred"},"cursor":"3"}',
    );
    expect(frame.event.type === 'call.updated' && frame.event.data.change).toBe('other');
    const moved = parseServerFrame(
      '{"type":"call.updated","data":{"call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002","change":"media_moved"},"cursor":"4"}',
    );
    expect(moved.event.type === 'call.updated' && moved.event.data.change).toBe('media_moved');
  });
});

describe('client frames', () => {
  it('are what the server reads', () => {
    expect(clientFrameToJson({ type: 'ping' })).toBe('{"type":"ping"}');
    expect(
      clientFrameToJson({ type: 'typing', chat_id: '0190a3a0-0000-7000-8000-000000000002' }),
    ).toBe('{"type":"typing","chat_id":"0190a3a0-0000-7000-8000-000000000002"}');
    expect(clientFrameToJson({ type: 'auth', token: 't' })).toBe('{"type":"auth","token":"t"}');
  });
});

describe('webSocketUrl', () => {
  it('maps the origin to ws(s) and carries only the cursor', () => {
    expect(webSocketUrl('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/ws');
    expect(webSocketUrl('https://chat.example', '42')).toBe('wss://chat.example/ws?cursor=42');
    expect(webSocketProtocols('jwt.a.b')).toEqual(['bearer', 'jwt.a.b']);
  });
});
