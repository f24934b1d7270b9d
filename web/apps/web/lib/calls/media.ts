/**
 * The media rules of a call, as plain functions: what the browser publishes, which simulcast
 * layer each subscriber asks the SFU for, and the one SDP change we make (Opus DTX).
 */

/** Simulcast layers a camera is published in, best first (the SFU forwards one per subscriber). */
export const SIMULCAST_LAYERS: RTCRtpEncodingParameters[] = [
  { rid: 'h', maxBitrate: 1_200_000 },
  { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 400_000 },
  { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 120_000 },
];

export type Layer = 'h' | 'm' | 'l';
const ORDER: Layer[] = ['h', 'm', 'l'];

/** Above this share of lost packets a subscriber steps down one layer. */
export const LOSSY = 0.08;

/**
 * The layer a tile gets: the one person you talk to in full, a few in the middle one, a crowd
 * in the smallest; a lossy link (the last interval's `lossRatio`) one step lower; audio-only
 * mode the smallest (its video is not shown).
 */
export function chooseLayer(videoTiles: number, lossRatio: number, audioOnly: boolean): Layer {
  if (audioOnly) return 'l';
  let index = videoTiles <= 1 ? 0 : videoTiles <= 4 ? 1 : 2;
  if (lossRatio >= LOSSY) index = Math.min(index + 1, ORDER.length - 1);
  return ORDER[index] ?? 'l';
}

/**
 * Asks for Opus DTX (no packets during silence) in the SFU's description: a browser's Opus
 * encoder uses DTX only when the remote side says `usedtx=1`. In-band FEC
 * (`useinbandfec=1`) is already what browsers offer and the SFU answers.
 */
export function withOpusDtx(sdp: string): string {
  const opus = /^a=rtpmap:(\d+) opus\/48000/im.exec(sdp)?.[1];
  if (!opus) return sdp;
  const fmtp = new RegExp(`^(a=fmtp:${opus} )(.*)$`, 'm');
  const line = fmtp.exec(sdp);
  if (!line)
    return sdp.replace(new RegExp(`^(a=rtpmap:${opus} .*)$`, 'm'), `$1\r\na=fmtp:${opus} usedtx=1`);
  if (/usedtx=/.test(line[2] ?? '')) return sdp;
  return sdp.replace(fmtp, `$1$2;usedtx=1`);
}

/** One participant of the SFU's `participants` frame. */
export interface RoomParticipant {
  user_id: string;
  tracks: { mid: string; kind: string }[];
}

/** Reads a `participants` frame defensively: anything malformed is left out. */
export function readParticipants(value: unknown): RoomParticipant[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry: unknown) => {
    if (!entry || typeof entry !== 'object') return [];
    const { user_id: userId, tracks } = entry as Record<string, unknown>;
    if (typeof userId !== 'string') return [];
    const list = Array.isArray(tracks)
      ? tracks.flatMap((t: unknown) => {
          if (!t || typeof t !== 'object') return [];
          const { mid, kind } = t as Record<string, unknown>;
          return typeof mid === 'string' && typeof kind === 'string' ? [{ mid, kind }] : [];
        })
      : [];
    return [{ user_id: userId, tracks: list }];
  });
}
