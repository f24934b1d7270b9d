import { describe, expect, it } from 'vitest';
import { fitWithin, looksBlank, THUMBNAIL_MAX_BYTES, thumbnailBytes, toBase64 } from './thumbnails';

describe('thumbnails', () => {
  it('tells a frame not decoded yet (transparent or black) from a picture', () => {
    expect(looksBlank(new Uint8ClampedArray([0, 0, 0, 0, 0, 0, 0, 0]))).toBe(true);
    expect(looksBlank(new Uint8ClampedArray([3, 5, 2, 255, 0, 0, 0, 255]))).toBe(true);
    expect(looksBlank(new Uint8ClampedArray([0, 0, 0, 255, 208, 0, 0, 255]))).toBe(false);
    // A coloured pixel that is fully transparent is still nothing drawn.
    expect(looksBlank(new Uint8ClampedArray([208, 0, 0, 0]))).toBe(true);
  });

  it('scales the longer side down to the limit, never up, keeping the aspect', () => {
    expect(fitWithin(4000, 3000, 320)).toEqual({ width: 320, height: 240 });
    expect(fitWithin(1080, 1920, 320)).toEqual({ width: 180, height: 320 });
    expect(fitWithin(100, 50, 320)).toEqual({ width: 100, height: 50 });
    expect(fitWithin(5000, 1, 320)).toEqual({ width: 320, height: 1 });
  });

  it('encodes bytes as padded base64, also beyond one chunk', () => {
    expect(toBase64(new Uint8Array([0xff, 0xd8]))).toBe('/9g=');
    const big = new Uint8Array(0x8000 * 2 + 5).map((_, i) => i % 251);
    const back = thumbnailBytes({
      content_type: 'image/jpeg',
      width: 1,
      height: 1,
      data: toBase64(big.subarray(0, THUMBNAIL_MAX_BYTES)),
    });
    expect(back).toEqual(big.subarray(0, THUMBNAIL_MAX_BYTES));
  });

  it('shows only raster thumbnails within the size bound', () => {
    const base = { width: 2, height: 2, data: toBase64(new Uint8Array([1, 2, 3])) };
    expect(thumbnailBytes({ ...base, content_type: 'image/png' })).toEqual(
      new Uint8Array([1, 2, 3]),
    );
    // A sender's client is not trusted: an SVG (a document) or a huge blob is not shown.
    const svg = { ...base, content_type: 'image/svg+xml' } as unknown as Parameters<
      typeof thumbnailBytes
    >[0];
    expect(thumbnailBytes(svg)).toBeNull();
    const huge = toBase64(new Uint8Array(THUMBNAIL_MAX_BYTES + 3));
    expect(thumbnailBytes({ ...base, content_type: 'image/jpeg', data: huge })).toBeNull();
    expect(thumbnailBytes({ ...base, content_type: 'image/jpeg', data: '%%%' })).toBeNull();
    expect(thumbnailBytes(undefined)).toBeNull();
  });
});
