/**
 * Photos, videos and other files, encrypted on this device (`docs/e2ee.md`, "Attachments"):
 * AES-256-CTR under a fresh key per file, SHA-256 over the ciphertext, by the core's streaming
 * `AttachmentEncryptor` / `AttachmentDecryptor`. The server only ever sees ciphertext, uploaded
 * as `application/octet-stream`.
 *
 * Uploads read the file chunk by chunk (never whole in memory). Small files go in one
 * `POST /media`; larger ones through the resumable upload API (`POST /media/uploads`, then
 * `PATCH /media/uploads/{id}` at the server's offset, then `/complete`): a chunk cut off by the
 * network is resumed from the offset the server reports, and an upload that gave up can be
 * resumed later with {@link EncryptedUpload.run} (the encryptor and the ciphertext not yet
 * acknowledged stay with the job).
 */
import {
  appendUploadChunk,
  errorDetail,
  uploadMedia,
  type MediaView,
  type ParleyClient,
} from '@parley/sdk';
import type { AttachmentEncryptorLike, AttachmentInfo, CryptoCore } from './crypto';

/** Files up to this size go in one request. */
export const SINGLE_UPLOAD_MAX = 2 * 1024 * 1024;
/** Bytes read, encrypted and sent per `PATCH`. */
export const UPLOAD_CHUNK = 2 * 1024 * 1024;
/** The server's limit (`PARLEY_MEDIA_MAX_BYTES`, default 100 MiB). */
export const MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024;
/** Attempts per request before the upload gives up (it can still be resumed). */
const ATTEMPTS = 6;

/** Media types shown inline (the server serves the same list inline). */
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif']);
const VIDEO_TYPES = new Set(['video/mp4', 'video/webm', 'video/quicktime']);

export type AttachmentKind = 'image' | 'video' | 'file';

/** How the app shows an attachment: only well-known image and video types are rendered. */
export function attachmentKind(contentType: string): AttachmentKind {
  const type = contentType.toLowerCase().split(';')[0]!.trim();
  if (IMAGE_TYPES.has(type)) return 'image';
  if (VIDEO_TYPES.has(type)) return 'video';
  return 'file';
}

const BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  pdf: 'application/pdf',
  txt: 'text/plain',
};

/** The media type to put in the attachment info (a label inside the encrypted message). */
export function contentTypeOf(file: { name: string; type: string }): string {
  if (file.type) return file.type;
  const extension = file.name.split('.').pop()?.toLowerCase() ?? '';
  return BY_EXTENSION[extension] ?? 'application/octet-stream';
}

/** A request that failed: `retry` when trying again may help (network, 5xx, 429). */
export class TransferError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'TransferError';
  }
}

function answerError(error: unknown, response: Response): TransferError {
  const { message } = errorDetail(error, response.status);
  return new TransferError(
    message,
    response.status >= 500 || response.status === 429,
    response.status,
  );
}

/** Calls the api; a thrown `fetch` (network down, connection cut) becomes a retryable error. */
async function call<T>(
  request: () => Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<{ data?: T; error?: unknown; response: Response }> {
  try {
    return await request();
  } catch (error) {
    throw new TransferError(
      `network error: ${error instanceof Error ? error.message : String(error)}`,
      true,
    );
  }
}

export interface UploadProgress {
  /** Bytes the server has. */
  sent: number;
  total: number;
}

export interface UploadOptions {
  onProgress?: (progress: UploadProgress) => void;
  /** Waits between attempts (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
}

/** What the file is: a browser `File` (or any Blob with a name). */
export interface NamedBlob extends Blob {
  readonly name: string;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One file being encrypted and uploaded. {@link run} resolves with the attachment info for the
 * message; when it fails (after retries), calling it again resumes where the server's copy
 * ends.
 */
export class EncryptedUpload {
  readonly total: number;
  readonly contentType: string;
  private encryptor: AttachmentEncryptorLike | null = null;
  /** Plaintext bytes encrypted so far. */
  private position = 0;
  /** The ciphertext not yet known to be on the server, and where it starts. */
  private pending: { start: number; bytes: Uint8Array } | null = null;
  private uploadId: string | null = null;
  private serverOffset = 0;
  private keys: ReturnType<AttachmentEncryptorLike['finish']> | null = null;
  private info: AttachmentInfo | null = null;
  private running: Promise<AttachmentInfo> | null = null;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly client: ParleyClient,
    private readonly core: CryptoCore,
    readonly file: NamedBlob,
    private readonly options: UploadOptions = {},
  ) {
    this.total = file.size;
    this.contentType = contentTypeOf(file);
    this.sleep = options.sleep ?? defaultSleep;
  }

  get resumable(): boolean {
    return this.total > SINGLE_UPLOAD_MAX;
  }

  /** Uploads (or resumes) the file; the same promise while it runs. */
  run(): Promise<AttachmentInfo> {
    this.running ??= this.work().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Lets go of the encryptor (the upload was abandoned). */
  dispose() {
    this.encryptor?.free();
    this.encryptor = null;
  }

  private progress(sent: number) {
    this.options.onProgress?.({ sent, total: this.total });
  }

  private async work(): Promise<AttachmentInfo> {
    if (this.info) return this.info;
    if (this.total > MAX_ATTACHMENT_BYTES) {
      throw new TransferError(
        `the file is larger than ${MAX_ATTACHMENT_BYTES / 1024 / 1024} MiB`,
        false,
      );
    }
    this.encryptor ??= await this.core.attachmentEncryptor();
    const media = this.resumable ? await this.uploadInChunks() : await this.uploadAtOnce();
    const keys = this.keys;
    if (!keys) throw new Error('the file was not encrypted to its end');
    this.info = {
      ...keys,
      media_id: media.id,
      content_type: this.contentType,
      name: this.file.name || 'file',
    };
    this.dispose();
    return this.info;
  }

  /** Reads, encrypts and returns the next chunk's ciphertext (`null` at the end). */
  private async nextChunk(): Promise<Uint8Array | null> {
    if (this.position >= this.total) return null;
    const plain = new Uint8Array(
      await this.file.slice(this.position, this.position + UPLOAD_CHUNK).arrayBuffer(),
    );
    if (plain.length === 0) throw new TransferError('the file changed while it was sent', false);
    const encryptor = this.encryptor!;
    const cipher = encryptor.update(plain);
    this.position += plain.length;
    if (this.position >= this.total) this.keys = encryptor.finish();
    return cipher;
  }

  /** Retries `attempt` while it fails in a retryable way, with growing pauses. */
  private async withRetries<T>(attempt: () => Promise<T>, recover?: () => Promise<void>) {
    for (let tries = 1; ; tries += 1) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof TransferError) || !error.retry || tries >= ATTEMPTS) throw error;
        await this.sleep(Math.min(500 * 2 ** (tries - 1), 8000));
        await recover?.().catch(() => undefined);
      }
    }
  }

  private async uploadAtOnce(): Promise<MediaView> {
    if (!this.pending) {
      const parts: Uint8Array[] = [];
      for (let chunk = await this.nextChunk(); chunk; chunk = await this.nextChunk()) {
        parts.push(chunk);
      }
      const bytes = new Uint8Array(this.total);
      let at = 0;
      for (const part of parts) {
        bytes.set(part, at);
        at += part.length;
      }
      this.pending = { start: 0, bytes };
    }
    const { bytes } = this.pending;
    this.progress(0);
    const media = await this.withRetries(async () => {
      const { data, error, response } = await call(() => uploadMedia(this.client, bytes));
      if (!data) throw answerError(error, response);
      return data;
    });
    this.pending = null;
    this.progress(this.total);
    return media;
  }

  /** Asks the server how far the upload got. */
  private async syncOffset(): Promise<void> {
    const id = this.uploadId!;
    const { data, error, response } = await call(() =>
      this.client.GET('/media/uploads/{id}', { params: { path: { id } } }),
    );
    if (!data) throw answerError(error, response);
    this.serverOffset = data.offset;
  }

  private async uploadInChunks(): Promise<MediaView> {
    if (!this.uploadId) {
      const started = await this.withRetries(async () => {
        const { data, error, response } = await call(() =>
          this.client.POST('/media/uploads', {
            body: { content_type: 'application/octet-stream' },
          }),
        );
        if (!data) throw answerError(error, response);
        return data;
      });
      this.uploadId = started.upload_id;
      this.serverOffset = started.offset;
    } else {
      // Resuming: the server may have more than it acknowledged before the failure.
      await this.withRetries(() => this.syncOffset());
    }
    const uploadId = this.uploadId;
    this.progress(this.serverOffset);
    for (;;) {
      if (this.pending && this.serverOffset >= this.pending.start + this.pending.bytes.length) {
        this.pending = null;
      }
      if (!this.pending) {
        if (this.serverOffset !== this.position) {
          throw new TransferError(
            `the server holds ${this.serverOffset} bytes where ${this.position} were sent`,
            false,
          );
        }
        const bytes = await this.nextChunk();
        if (!bytes) break;
        this.pending = { start: this.position - bytes.length, bytes };
      }
      const pending = this.pending;
      if (this.serverOffset < pending.start) {
        throw new TransferError('the server lost part of the upload', false);
      }
      await this.withRetries(
        async () => {
          const offset = this.serverOffset;
          const body = pending.bytes.subarray(offset - pending.start);
          const { data, error, response } = await call(() =>
            appendUploadChunk(this.client, uploadId, offset, body),
          );
          if (data) {
            this.serverOffset = data.offset;
            return;
          }
          if (response.status === 409) {
            // Another offset than ours: ask for the right one and go on from there.
            await this.syncOffset();
            return;
          }
          throw answerError(error, response);
        },
        () => this.syncOffset(),
      );
      this.progress(this.serverOffset);
    }
    return this.withRetries(async () => {
      const { data, error, response } = await call(() =>
        this.client.POST('/media/uploads/{id}/complete', { params: { path: { id: uploadId } } }),
      );
      if (!data) throw answerError(error, response);
      return data;
    });
  }
}

/**
 * Downloads an attachment and decrypts it while it streams. The plaintext is only handed out
 * once the whole ciphertext matched the message's SHA-256 and size; otherwise it is dropped
 * and this throws (`attachment_hash_mismatch` / `attachment_size_mismatch`).
 */
export async function downloadDecrypted(
  client: ParleyClient,
  core: CryptoCore,
  info: AttachmentInfo,
  onProgress?: (progress: { received: number; total: number }) => void,
): Promise<Blob> {
  const { data, error, response } = await call(() =>
    client.GET('/media/{id}', { params: { path: { id: info.media_id } }, parseAs: 'stream' }),
  );
  if (!response.ok || !data) throw answerError(error, response);
  const decryptor = await core.attachmentDecryptor(info);
  const parts: Uint8Array[] = [];
  let received = 0;
  try {
    const reader = (data as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (received > info.size) {
        await reader.cancel();
        throw new TransferError('the download is longer than the attachment', false);
      }
      parts.push(decryptor.update(value));
      onProgress?.({ received, total: info.size });
    }
    decryptor.finish();
  } catch (failure) {
    parts.length = 0;
    throw failure;
  } finally {
    decryptor.free();
  }
  const kind = attachmentKind(info.content_type);
  return new Blob(parts as BlobPart[], {
    type: kind === 'file' ? 'application/octet-stream' : info.content_type,
  });
}
