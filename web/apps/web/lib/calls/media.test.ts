import { describe, expect, it } from 'vitest';
import { chooseLayer, LOSSY, readParticipants, SIMULCAST_LAYERS, withOpusDtx } from './media';

describe('call media rules', () => {
  it('publishes three simulcast layers, best first', () => {
    expect(SIMULCAST_LAYERS.map((l) => l.rid)).toEqual(['h', 'm', 'l']);
  });

  it('gives a tile the layer that fits it and the link', () => {
    expect(chooseLayer(1, 0, false)).toBe('h');
    expect(chooseLayer(3, 0, false)).toBe('m');
    expect(chooseLayer(4, 0, false)).toBe('m');
    expect(chooseLayer(5, 0, false)).toBe('l');
    // A lossy link steps down one layer, never below the smallest.
    expect(chooseLayer(1, LOSSY, false)).toBe('m');
    expect(chooseLayer(3, 0.3, false)).toBe('l');
    expect(chooseLayer(6, 0.3, false)).toBe('l');
    // Audio only: the smallest (the video is not shown).
    expect(chooseLayer(1, 0, true)).toBe('l');
  });

  it('asks for Opus DTX in the SFU’s description, once', () => {
    const sdp = [
      'v=0',
      'm=audio 9 UDP/TLS/RTP/SAVPF 111',
      'a=rtpmap:111 opus/48000/2',
      'a=fmtp:111 minptime=10;useinbandfec=1',
      'm=video 9 UDP/TLS/RTP/SAVPF 96',
      'a=rtpmap:96 VP8/90000',
      '',
    ].join('\r\n');
    const dtx = withOpusDtx(sdp);
    expect(dtx).toContain('a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n');
    expect(withOpusDtx(dtx)).toBe(dtx);
    // No fmtp line: one is added after the rtpmap.
    const bare = 'm=audio 9 RTP/SAVPF 109\r\na=rtpmap:109 opus/48000/2\r\n';
    expect(withOpusDtx(bare)).toContain('a=rtpmap:109 opus/48000/2\r\na=fmtp:109 usedtx=1\r\n');
    // No Opus: untouched.
    expect(withOpusDtx('m=video 9 RTP/SAVPF 96\r\n')).toBe('m=video 9 RTP/SAVPF 96\r\n');
  });

  it('reads the SFU’s participants frame defensively', () => {
    expect(
      readParticipants([
        { user_id: 'u1', tracks: [{ mid: '3', kind: 'video' }, { mid: 4 }, null] },
        { user_id: 7 },
        'nonsense',
        { user_id: 'u2' },
      ]),
    ).toEqual([
      { user_id: 'u1', tracks: [{ mid: '3', kind: 'video' }] },
      { user_id: 'u2', tracks: [] },
    ]);
    expect(readParticipants({})).toEqual([]);
  });
});
