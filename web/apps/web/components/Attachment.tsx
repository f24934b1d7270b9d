import { attachmentKind } from '../lib/attachments';
import type { AttachmentInfo } from '../lib/crypto';
import { formatBytes } from '../lib/format';
import type { MediaState } from '../lib/store';
import { thumbnailBytes, type Thumbnail } from '../lib/thumbnails';
import { useEffect, useState } from 'react';

/** Photos up to this size are downloaded and decrypted as soon as they are shown. */
export const AUTO_LOAD_MAX = 25 * 1024 * 1024;

/** A `blob:` URL of the message's thumbnail while the row shows (none if it has no usable one). */
function useThumbnailUrl(thumbnail: Thumbnail | undefined): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    const bytes = thumbnailBytes(thumbnail);
    if (!bytes || !thumbnail) return undefined;
    const made = URL.createObjectURL(new Blob([bytes], { type: thumbnail.content_type }));
    // eslint-disable-next-line react-hooks/set-state-in-effect -- the URL lives as long as the effect
    setUrl(made);
    return () => {
      URL.revokeObjectURL(made);
      setUrl(null);
    };
  }, [thumbnail]);
  return url;
}

/** The thumbnail as the attachment's stand-in, at its own aspect ratio. */
function Preview({ url, thumbnail }: { url: string | null; thumbnail: Thumbnail | undefined }) {
  if (!url || !thumbnail) return null;
  return (
    // A decrypted blob: next/image has nothing to optimise (and the export has no loader).
    // eslint-disable-next-line @next/next/no-img-element
    <img
      className="attachment__thumb"
      src={url}
      alt=""
      width={thumbnail.width}
      height={thumbnail.height}
    />
  );
}

/**
 * An attachment in a message: photos inline (decrypted, scaled by CSS), videos behind a play
 * button until they are downloaded and decrypted (then a player on a `blob:` URL), other files
 * as a download. The message's thumbnail, if it has one, stands in until the file is shown.
 */
export function Attachment({
  info,
  thumbnail,
  media,
  onLoad,
}: {
  info: AttachmentInfo;
  thumbnail?: Thumbnail | undefined;
  media: MediaState | undefined;
  onLoad: (info: AttachmentInfo) => void;
}) {
  const thumbnailUrl = useThumbnailUrl(thumbnail);
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
          poster={thumbnailUrl ?? undefined}
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
        <Preview url={thumbnailUrl} thumbnail={thumbnail} />
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
        <Preview url={thumbnailUrl} thumbnail={thumbnail} />
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
      {kind === 'image' ? <Preview url={thumbnailUrl} thumbnail={thumbnail} /> : null}
      {kind === 'image' ? 'Show photo' : 'Download'} {info.name} ({size})
    </button>
  );
}
