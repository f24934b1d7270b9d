/**
 * Profile pictures. `GET /media/{id}` needs the access token, which an `<img src>` cannot send,
 * so each picture is fetched once through the SDK from our own origin (never from whatever host
 * a profile's `avatar_url` might name) and shown through a `blob:` URL, which the page's CSP
 * allows (`img-src 'self' blob:`). The URLs are revoked at sign-out.
 */
import { downloadMedia } from '@parley/sdk';
import type { FeatureContext } from './context';

/** A picture that failed is tried again after this long, when something shows it. */
export const AVATAR_RETRY_MS = 60_000;
/** Larger downloads are not shown (the app uploads pictures of a few hundred KiB). */
export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;

export interface ObjectUrls {
  create(blob: Blob): string;
  revoke(url: string): void;
}

const browserObjectUrls: ObjectUrls = {
  create: (blob) => URL.createObjectURL(blob),
  revoke: (url) => URL.revokeObjectURL(url),
};

export class Avatars {
  private readonly created = new Map<string, string>();

  constructor(
    private readonly context: FeatureContext,
    private readonly objectUrls: ObjectUrls = browserObjectUrls,
  ) {}

  /** Makes sure the picture is loaded or loading; components call it when they show one. */
  request(mediaId: string | null | undefined): void {
    if (!mediaId) return;
    const { avatars, auth } = this.context.store.getState();
    if (auth.status !== 'signed_in') return;
    const entry = avatars[mediaId];
    if (entry && (entry.status !== 'failed' || this.context.now() - entry.at < AVATAR_RETRY_MS)) {
      return;
    }
    this.context.store.dispatch({ type: 'avatars/loading', mediaId });
    void this.fetch(mediaId);
  }

  private async fetch(mediaId: string) {
    try {
      const { data, response } = await downloadMedia(this.context.client, mediaId);
      if (!response.ok || !(data instanceof Blob) || data.size === 0) {
        throw new Error(`picture not available (HTTP ${response.status})`);
      }
      if (data.size > AVATAR_MAX_BYTES) throw new Error('picture too large');
      // Signed out while it downloaded: nothing may keep it.
      if (this.context.store.getState().auth.status !== 'signed_in') return;
      const url = this.objectUrls.create(data);
      this.created.set(mediaId, url);
      this.context.store.dispatch({ type: 'avatars/ready', mediaId, url });
    } catch {
      this.failed(mediaId);
    }
  }

  /** The picture could not be fetched or decoded: initials show, and a later view retries. */
  failed(mediaId: string): void {
    const url = this.created.get(mediaId);
    if (url) {
      this.objectUrls.revoke(url);
      this.created.delete(mediaId);
    }
    this.context.store.dispatch({ type: 'avatars/failed', mediaId, at: this.context.now() });
  }

  /** Signed out: every picture's URL is released (the store forgets them itself). */
  clear(): void {
    for (const url of this.created.values()) this.objectUrls.revoke(url);
    this.created.clear();
  }
}
