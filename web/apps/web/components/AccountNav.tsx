import Link from 'next/link';
import { useRouter } from 'next/router';
import { badgeCount, selectUnreadNotifications } from '../lib/features/notifications';
import { useAppState, useController } from './AppProvider';
import { UserAvatar } from './Avatar';

/** You (to your profile), notifications with the unread count, and devices. */
export function AccountNav() {
  const state = useAppState();
  const router = useRouter();
  const me = state.auth.userId;
  const name = me ? (state.users[me]?.name ?? 'You') : 'You';
  const unread = selectUnreadNotifications(state);
  const current = (path: string) => (router.pathname === path ? 'page' : undefined);
  return (
    <nav className="account" aria-label="Account">
      <Link href="/profile" className="account__me" aria-current={current('/profile')}>
        <UserAvatar userId={me} size="small" />
        <span className="account__who">
          <span className="account__name">{name}</span>
          <span className="account__hint">Your profile</span>
        </span>
      </Link>
      <Link
        href="/notifications"
        className="account__link"
        aria-current={current('/notifications')}
      >
        Notifications
        {unread > 0 ? (
          <span className="badge">
            {badgeCount(unread)}
            <span className="visually-hidden"> unread</span>
          </span>
        ) : null}
      </Link>
      <Link href="/devices" className="account__link" aria-current={current('/devices')}>
        Devices
      </Link>
    </nav>
  );
}

/** A message for the whole app, until dismissed. */
export function AppBanner() {
  const { banner } = useAppState();
  const controller = useController();
  if (!banner) return null;
  return (
    <div className="notice notice--app" role="status">
      <p>{banner}</p>
      <button
        type="button"
        className="button button--small"
        onClick={() => controller?.store.dispatch({ type: 'banner/set', banner: null })}
      >
        Dismiss
      </button>
    </div>
  );
}
