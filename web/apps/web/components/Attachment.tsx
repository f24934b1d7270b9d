import { attachmentKind } from '../lib/attachments';
import type { AttachmentInfo } from '../lib/crypto';
import { formatBytes } from '../lib/format';
import type { MediaState } from '../lib/store';
import { useEffect } from 'react';

/** Photos up to this size are downloaded and decrypted as soon as they are shown. */
export const AUTO_LOAD_MAX = 25 * 1024 * 1024;

/**
 * An attachment in a message: photos inline (decrypted, scaled by CSS), videos behind a play
 * button until they are downloaded and decrypted (then a player on a `blob:` URL), other files
 * as a download.
 */
export function Attachment({
  info,
  media,
  onLoad,
}: {
  info: AttachmentInfo;
  media: MediaState | undefined;
  onLoad: (info: AttachmentInfo) => void;
}) {
  const kind = attachmentKind(info.content_type);
  const autoLoad = kind === 'image' && info.size <= AUTO_LOAD_MAX;
  useEffect(() => {
    if (autoLoad && !media) onLoad(info);
  }, [autoLoad, media, onLoad, info]);

  const size = formatBytes(info.size);
  if (media?.status === 'ready') {
    if (kind === 'image') {
      return (
        <a className="attachment" href={media.url} target="_blank" rel="noreferrer">
          {/* A decrypted blob: next/image has nothing to optimise (and the export has no loader). */}
          {/* eslint-disable-next-line @next/next/no-img-element */}
          <img className="attachment__image" src={media.url} alt={info.name} />
        </a>
      );
    }
    if (kind === 'video') {
      return (
        <video
          className="attachment__video"
          src={media.url}
          controls
          playsInline
          preload="metadata"
          aria-label={info.name}
        />
      );
    }
    return (
      <a className="attachment attachment__file" href={media.url} download={info.name}>
        Save {info.name} ({size})
      </a>
    );
  }
  if (media?.status === 'loading') {
    const what = kind === 'image' ? 'photo' : kind === 'video' ? 'video' : 'file';
    return (
      <div className="attachment attachment__placeholder" role="status">
        <span>
          Decrypting {what}… {formatBytes(media.received)} of {formatBytes(media.total)}
        </span>
        <progress value={media.received} max={Math.max(media.total, 1)} />
      </div>
    );
  }
  if (media?.status === 'error') {
    return (
      <div className="attachment attachment__placeholder attachment__placeholder--error">
        <span>
          {info.name} could not be shown: {media.reason}
        </span>
        <button type="button" className="button button--small" onClick={() => onLoad(info)}>
          Try again
        </button>
      </div>
    );
  }
  if (kind === 'video') {
    return (
      <button
        type="button"
        className="attachment attachment__play"
        onClick={() => onLoad(info)}
        aria-label={`Play video ${info.name} (${size})`}
      >
        <span className="attachment__play-icon" aria-hidden="true" />
        <span>
          {info.name} · {size}
        </span>
      </button>
    );
  }
  return (
    <button
      type="button"
      className="attachment attachment__placeholder"
      onClick={() => onLoad(info)}
    >
      {kind === 'image' ? 'Show photo' : 'Download'} {info.name} ({size})
    </button>
  );
}
