/**
 * Thumbnails: a small JPEG of a photo, or of a video's first frame, made in the browser when the
 * file is sent and carried inside the encrypted message, so a receiver sees a preview before
 * (or instead of) downloading the file. The core drops a thumbnail that is not a small raster
 * image; this module keeps what it makes well within those bounds.
 */
import type { MessageContent } from './crypto';

export type Thumbnail = NonNullable<Extract<MessageContent, { type: 'file' }>['thumbnail']>;

/** The core's bounds (`client-core/src/payloads.rs`). */
export const THUMBNAIL_MAX_BYTES = 16 * 1024;
const ALLOWED_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/webp']);

/** What this app makes: the longer side at most this many pixels ... */
export const THUMBNAIL_SIDE = 320;
/** ... as a JPEG, at the first of these qualities that fits {@link THUMBNAIL_MAX_BYTES}. */
const QUALITIES = [0.7, 0.5, 0.35];
/** A video that shows no frame within this long gets no thumbnail. */
const VIDEO_FRAME_TIMEOUT_MS = 4000;
/** A video frame drawn blank is drawn again this often, this many times (the decoder may not
 * have handed the frame over yet, on a busy machine). */
const BLANK_FRAME_RETRY_MS = 100;
const BLANK_FRAME_RETRIES = 10;

/** Whether RGBA pixels are all transparent or near black: a frame not decoded yet. */
export function looksBlank(pixels: Uint8ClampedArray): boolean {
  for (let i = 0; i + 3 < pixels.length; i += 4) {
    const [r = 0, g = 0, b = 0, a = 0] = pixels.subarray(i, i + 4);
    if (a > 0 && (r > 16 || g > 16 || b > 16)) return false;
  }
  return true;
}

/** Makes a file's thumbnail, or `null` (not a photo or video, or it cannot be decoded). */
export type ThumbnailMaker = (file: Blob, contentType: string) => Promise<Thumbnail | null>;

/** `width`×`height` scaled down (never up) so that the longer side is at most `side`. */
export function fitWithin(
  width: number,
  height: number,
  side: number,
): { width: number; height: number } {
  const scale = Math.min(1, side / Math.max(width, height, 1));
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

/** Padded base64 of `bytes` (chunked: `String.fromCharCode` takes only so many arguments). */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The thumbnail's bytes, if it is one this app shows (allowed type, within the size bound). */
export function thumbnailBytes(thumbnail: Thumbnail | undefined): Uint8Array<ArrayBuffer> | null {
  if (!thumbnail || !ALLOWED_TYPES.has(thumbnail.content_type)) return null;
  if (thumbnail.data.length > Math.ceil(THUMBNAIL_MAX_BYTES / 3) * 4) return null;
  try {
    const binary = atob(thumbnail.data);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took too long`)), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function once(target: HTMLMediaElement, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    target.addEventListener(event, () => resolve(), { once: true });
    target.addEventListener('error', () => reject(new Error('the video cannot be decoded')), {
      once: true,
    });
  });
}

/** A video's frame a tenth of a second in (the very first is often black). */
async function videoFrame(file: Blob): Promise<{ source: HTMLVideoElement; release: () => void }> {
  const url = URL.createObjectURL(file);
  const video = document.createElement('video');
  const release = () => {
    video.removeAttribute('src');
    video.load();
    URL.revokeObjectURL(url);
  };
  try {
    video.muted = true;
    video.playsInline = true;
    video.preload = 'auto';
    const loaded = once(video, 'loadeddata');
    video.src = url;
    await withTimeout(loaded, VIDEO_FRAME_TIMEOUT_MS, 'loading the video');
    const seeked = once(video, 'seeked');
    video.currentTime = Math.min(0.1, (video.duration || 0) / 2);
    await withTimeout(seeked, VIDEO_FRAME_TIMEOUT_MS, 'finding a frame');
    return { source: video, release };
  } catch (error) {
    release();
    throw error;
  }
}

function canvasBlob(canvas: HTMLCanvasElement, quality: number): Promise<Blob | null> {
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
}

/** The browser's {@link ThumbnailMaker}: decodes with the browser, draws onto a canvas. */
export const browserThumbnail: ThumbnailMaker = async (file, contentType) => {
  const kind = contentType.split('/')[0];
  if (kind !== 'image' && kind !== 'video') return null;
  // SVG is a document, not a picture to draw from (and the receiver would not show it anyway).
  if (contentType === 'image/svg+xml') return null;
  let source: CanvasImageSource;
  let width: number;
  let height: number;
  let release = () => undefined as void;
  try {
    if (kind === 'image') {
      const bitmap = await createImageBitmap(file);
      [source, width, height] = [bitmap, bitmap.width, bitmap.height];
      release = () => bitmap.close();
    } else {
      const frame = await videoFrame(file);
      [source, width, height] = [frame.source, frame.source.videoWidth, frame.source.videoHeight];
      release = frame.release;
    }
  } catch {
    return null;
  }
  try {
    if (width < 1 || height < 1) return null;
    const size = fitWithin(width, height, THUMBNAIL_SIDE);
    const canvas = document.createElement('canvas');
    canvas.width = size.width;
    canvas.height = size.height;
    const context = canvas.getContext('2d');
    if (!context) return null;
    context.drawImage(source, 0, 0, size.width, size.height);
    for (let retry = 0; kind === 'video' && retry < BLANK_FRAME_RETRIES; retry += 1) {
      if (!looksBlank(context.getImageData(0, 0, size.width, size.height).data)) break;
      await new Promise((resolve) => setTimeout(resolve, BLANK_FRAME_RETRY_MS));
      context.drawImage(source, 0, 0, size.width, size.height);
    }
    for (const quality of QUALITIES) {
      const blob = await canvasBlob(canvas, quality);
      if (blob && blob.size <= THUMBNAIL_MAX_BYTES) {
        const data = toBase64(new Uint8Array(await blob.arrayBuffer()));
        return { content_type: 'image/jpeg', ...size, data };
      }
    }
    return null;
  } finally {
    release();
  }
};
