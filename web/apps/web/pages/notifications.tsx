import type { NotificationView } from '@parley/sdk';
import { useRouter } from 'next/router';
import { useEffect } from 'react';
import { useAppState, useController } from '../components/AppProvider';
import { UserAvatar } from '../components/Avatar';
import { PanelPage } from '../components/PanelPage';
import { Shell } from '../components/Shell';
import { useAsyncAction } from '../components/useAsyncAction';
import {
  describeNotification,
  notificationTarget,
  selectUnreadNotifications,
} from '../lib/features/notifications';
import { formatTime } from '../lib/format';

/** What happened while you were away: messages, being added to groups, calls. */
export default function NotificationsPage() {
  return (
    <Shell mode="detail">
      <NotificationsPanel />
    </Shell>
  );
}

function NotificationsPanel() {
  const state = useAppState();
  const controller = useController();
  const { busy, error, run } = useAsyncAction();
  const { items, status, error: loadError, nextCursor, loadingMore } = state.notifications;
  const unread = selectUnreadNotifications(state);

  // Fresh when the panel opens (frames keep it current while it is open).
  useEffect(() => {
    void controller?.features.notifications.load();
  }, [controller]);

  return (
    <PanelPage
      title="Notifications"
      titleId="notifications-title"
      actions={
        <button
          type="button"
          className="button button--small bar__end"
          disabled={busy || unread === 0}
          onClick={() =>
            void run(async () => {
              await controller?.features.notifications.markAllRead();
            })
          }
        >
          Mark all read
        </button>
      }
    >
      <p className="visually-hidden" role="status" aria-live="polite">
        {status === 'ready' ? `${unread} unread` : ''}
      </p>
      {error || loadError ? (
        <p className="error" role="alert">
          {error ?? loadError}
        </p>
      ) : null}
      {status === 'loading' || (status === 'idle' && items.length === 0) ? (
        <p className="empty">Loading notifications…</p>
      ) : null}
      {status === 'error' ? (
        <div>
          <button
            type="button"
            className="button"
            onClick={() => void controller?.features.notifications.load()}
          >
            Try again
          </button>
        </div>
      ) : null}
      {status === 'ready' && items.length === 0 ? (
        <p className="empty">Nothing new. Messages that arrive while you are away show up here.</p>
      ) : null}
      {items.length > 0 ? (
        <ul className="notifications" aria-label="Notifications">
          {items.map((item) => (
            <NotificationRow key={item.id} notification={item} />
          ))}
        </ul>
      ) : null}
      {nextCursor ? (
        <div>
          <button
            type="button"
            className="button"
            disabled={loadingMore}
            onClick={() => void controller?.features.notifications.loadMore()}
          >
            {loadingMore ? 'Loading…' : 'Show older'}
          </button>
        </div>
      ) : null}
    </PanelPage>
  );
}

function NotificationRow({ notification }: { notification: NotificationView }) {
  const state = useAppState();
  const controller = useController();
  const router = useRouter();
  const { busy, error, run } = useAsyncAction();
  const text = describeNotification(state, notification);
  const { chatId, userId } = notificationTarget(notification);

  async function open() {
    if (!controller) return;
    // Reading it is what opening means; the chat opens even if the server is not told yet.
    void controller.features.notifications.markRead([notification.id]).catch(() => undefined);
    if (chatId) await router.push({ pathname: '/chat', query: { id: chatId } });
  }

  return (
    <li className={`notifications__item${notification.read ? '' : ' notifications__item--unread'}`}>
      <button
        type="button"
        className="notifications__open"
        onClick={() => void open()}
        aria-label={`${notification.read ? '' : 'Unread: '}${text}, ${formatTime(notification.created_at)}${chatId ? '. Open the chat' : '. Mark read'}`}
      >
        <UserAvatar userId={userId} size="small" />
        <span className="notifications__text">
          <span className="notifications__title">{text}</span>
          <time className="notifications__time" dateTime={notification.created_at}>
            {formatTime(notification.created_at)}
          </time>
        </span>
        {notification.read ? null : <span className="dot" aria-hidden="true" />}
      </button>
      <button
        type="button"
        className="notifications__dismiss"
        aria-label={`Dismiss: ${text}`}
        disabled={busy}
        onClick={() =>
          void run(async () => {
            await controller?.features.notifications.dismiss(notification.id);
          })
        }
      >
        <span aria-hidden="true">×</span>
      </button>
      {error ? (
        <p className="error notifications__error" role="alert">
          {error}
        </p>
      ) : null}
    </li>
  );
}
