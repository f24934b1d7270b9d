/**
 * Decrypted attachments for display: downloaded (`GET /media/{id}`), verified and decrypted by
 * `downloadDecrypted`, then shown through `blob:` URLs (the page's CSP allows `blob:` for images
 * and media, nothing else). A few downloads run at a time; every URL is revoked on sign-out.
 */
import type { ParleyClient } from '@parley/sdk';
import { downloadDecrypted } from './attachments';
import type { AttachmentInfo, CryptoCore } from './crypto';
import type { MediaState } from './store';

/** Downloads at the same time. */
const PARALLEL = 3;

export interface ObjectUrls {
  create(blob: Blob): string;
  revoke(url: string): void;
}

export const browserObjectUrls: ObjectUrls = {
  create: (blob) => URL.createObjectURL(blob),
  revoke: (url) => URL.revokeObjectURL(url),
};

export interface MediaLoaderOptions {
  client: ParleyClient;
  crypto: CryptoCore;
  setMedia: (mediaId: string, media: MediaState) => void;
  objectUrls?: ObjectUrls;
}

export class MediaLoader {
  private readonly urls = new Map<string, string>();
  private readonly loading = new Map<string, Promise<void>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private generation = 0;
  private readonly objectUrls: ObjectUrls;

  constructor(private readonly options: MediaLoaderOptions) {
    this.objectUrls = options.objectUrls ?? browserObjectUrls;
  }

  /** Downloads and decrypts the attachment, once (again after a failure). */
  load(info: AttachmentInfo): Promise<void> {
    const id = info.media_id;
    if (this.urls.has(id)) return Promise.resolve();
    let pending = this.loading.get(id);
    if (!pending) {
      pending = this.fetch(info).finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    return pending;
  }

  /** The sender's own file: shown from the bytes it has, without a download. */
  adopt(mediaId: string, blob: Blob): void {
    if (this.urls.has(mediaId)) return;
    const url = this.objectUrls.create(blob);
    this.urls.set(mediaId, url);
    this.options.setMedia(mediaId, { status: 'ready', url });
  }

  /** Revokes every URL (sign-out). */
  clear(): void {
    this.generation += 1;
    for (const url of this.urls.values()) this.objectUrls.revoke(url);
    this.urls.clear();
    this.loading.clear();
  }

  private async slot(): Promise<() => void> {
    if (this.running >= PARALLEL) await new Promise<void>((go) => this.waiting.push(go));
    this.running += 1;
    return () => {
      this.running -= 1;
      this.waiting.shift()?.();
    };
  }

  private async fetch(info: AttachmentInfo): Promise<void> {
    const id = info.media_id;
    const generation = this.generation;
    const set = (media: MediaState) => {
      if (generation === this.generation) this.options.setMedia(id, media);
    };
    set({ status: 'loading', received: 0, total: info.size });
    const release = await this.slot();
    let shownPercent = 0;
    try {
      const blob = await downloadDecrypted(
        this.options.client,
        this.options.crypto,
        info,
        ({ received, total }) => {
          const percent = Math.floor((received / Math.max(total, 1)) * 50);
          if (percent !== shownPercent) {
            shownPercent = percent;
            set({ status: 'loading', received, total });
          }
        },
      );
      if (generation !== this.generation) return;
      const url = this.objectUrls.create(blob);
      this.urls.set(id, url);
      set({ status: 'ready', url });
    } catch (error) {
      set({ status: 'error', reason: error instanceof Error ? error.message : String(error) });
    } finally {
      release();
    }
  }
}
