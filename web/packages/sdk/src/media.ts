import type { ParleyClient } from './client';

/** Bytes as the browser has them. */
export type Bytes = Blob | ArrayBuffer | Uint8Array;

/**
 * Sends the body as it is. openapi-fetch JSON-encodes bodies by default; an
 * `application/octet-stream` body must reach `fetch` untouched.
 */
export const identityBodySerializer = <T>(body: T): T => body;

function asBlob(bytes: Bytes): Blob {
  // `Uint8Array<ArrayBufferLike>` is not a `BlobPart` in TypeScript 5.9's DOM types.
  return bytes instanceof Blob ? bytes : new Blob([bytes as BlobPart]);
}

/**
 * `POST /media`: uploads (already client-encrypted) bytes in one request. `contentType` is
 * recorded by the server, never interpreted; encrypted attachments go as
 * `application/octet-stream`.
 */
export function uploadMedia(
  client: ParleyClient,
  bytes: Bytes,
  contentType = 'application/octet-stream',
) {
  return client.POST('/media', {
    body: asBlob(bytes),
    bodySerializer: identityBodySerializer,
    headers: { 'Content-Type': contentType },
  });
}

/**
 * `PATCH /media/uploads/{id}`: appends the next chunk of a resumable upload at `offset`
 * (a wrong offset answers 409 naming the right one; `GET /media/uploads/{id}` tells it too).
 */
export function appendUploadChunk(
  client: ParleyClient,
  uploadId: string,
  offset: number,
  chunk: Bytes,
) {
  return client.PATCH('/media/uploads/{id}', {
    params: { path: { id: uploadId }, header: { 'Upload-Offset': offset } },
    body: asBlob(chunk),
    bodySerializer: identityBodySerializer,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
}

/** `GET /media/{id}` as a Blob, optionally one byte range (`bytes=a-b`). */
export function downloadMedia(client: ParleyClient, mediaId: string, range?: string) {
  return client.GET('/media/{id}', {
    params: { path: { id: mediaId }, ...(range ? { header: { Range: range } } : {}) },
    parseAs: 'blob',
  });
}
