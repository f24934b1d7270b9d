import { useEffect } from 'react';
import { initials } from '../lib/format';
import { useAppState, useController } from './AppProvider';

/** The picture's `blob:` URL once it is loaded (asking for it when first shown). */
function useAvatarUrl(mediaId: string | null | undefined): string | null {
  const controller = useController();
  const { avatars } = useAppState();
  useEffect(() => {
    controller?.features.avatars.request(mediaId);
  }, [controller, mediaId]);
  const entry = mediaId ? avatars[mediaId] : undefined;
  return entry?.status === 'ready' ? entry.url : null;
}

/**
 * A profile picture, or initials in a circle while there is none (or it is loading or failed).
 * Decorative: the name is always next to it.
 */
export function Avatar({
  name,
  group = false,
  mediaId = null,
  size = 'normal',
}: {
  name: string;
  group?: boolean;
  mediaId?: string | null;
  size?: 'small' | 'normal' | 'large';
}) {
  const controller = useController();
  const url = useAvatarUrl(mediaId);
  const classes = [
    'avatar',
    group ? 'avatar--group' : '',
    size !== 'normal' ? `avatar--${size}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return (
    <span className={classes} aria-hidden="true">
      {url && mediaId ? (
        // A blob: URL of a picture fetched with the token: next/image has nothing to add.
        // eslint-disable-next-line @next/next/no-img-element
        <img
          className="avatar__img"
          src={url}
          alt=""
          decoding="async"
          onError={() => controller?.features.avatars.failed(mediaId)}
        />
      ) : (
        initials(name)
      )}
    </span>
  );
}

/** A user's avatar by id, from the profiles the app has loaded. */
export function UserAvatar({
  userId,
  size,
}: {
  userId: string | null;
  size?: 'small' | 'normal' | 'large';
}) {
  const { users } = useAppState();
  const user = userId ? users[userId] : undefined;
  return (
    <Avatar
      name={user?.name ?? '?'}
      mediaId={user?.avatar_media_id ?? null}
      {...(size ? { size } : {})}
    />
  );
}
