/**
 * The notifications panel: `GET /notifications` (newest first), `notification.created` frames,
 * marking read, dismissing. Notifications point at a chat through ids in `data`; what they say
 * is worked out here from the store (names, chat titles), so the wording is unit-tested.
 */
import type { NotificationView } from '@parley/sdk';
import { selectChatTitle, type Action, type AppState } from '../store';
import { ApiRequestError, call, errorMessage } from './apiError';
import type { FeatureContext } from './context';

export const NOTIFICATIONS_PAGE_SIZE = 50;

/** What a notification's `data` may name (each id only when it is a string). */
export interface NotificationTarget {
  chatId: string | null;
  /** The sender of a message, who added you, or who called. */
  userId: string | null;
  callId: string | null;
}

function stringField(data: unknown, key: string): string | null {
  if (!data || typeof data !== 'object') return null;
  const value = (data as Record<string, unknown>)[key];
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** Reads the ids out of a notification's free-form `data`; anything malformed is `null`. */
export function notificationTarget(notification: Pick<NotificationView, 'kind' | 'data'>) {
  const { data } = notification;
  const target: NotificationTarget = {
    chatId: stringField(data, 'chat_id'),
    userId:
      stringField(data, 'sender_id') ??
      stringField(data, 'added_by') ??
      stringField(data, 'initiator_id') ??
      stringField(data, 'caller_id'),
    callId: stringField(data, 'call_id'),
  };
  return target;
}

/** One line saying what happened, e.g. "Alice added you to Hiking". */
export function describeNotification(state: AppState, notification: NotificationView): string {
  const { chatId, userId } = notificationTarget(notification);
  const known = chatId && (state.chats[chatId] || state.details[chatId]);
  const where = known ? selectChatTitle(state, chatId) : null;
  const isGroup = chatId ? (state.chats[chatId] ?? state.details[chatId])?.type === 'group' : false;
  // A missed call names only its chat: in a direct chat, that is who called.
  const who = userId
    ? (state.users[userId]?.name ?? 'Someone')
    : !isGroup && where && where !== 'Direct chat'
      ? where
      : 'Someone';
  switch (notification.kind) {
    case 'message':
      return isGroup && where ? `New message from ${who} in ${where}` : `New message from ${who}`;
    case 'added_to_group':
      return where ? `${who} added you to ${where}` : `${who} added you to a group`;
    case 'missed_call':
      return isGroup && where ? `Missed call in ${where}` : `Missed call from ${who}`;
    case 'incoming_call':
      return isGroup && where ? `Call in ${where}` : `${who} is calling`;
    default:
      return where ? `Something new in ${where}` : 'Something new';
  }
}

/** Unread notifications among those loaded. */
export function selectUnreadNotifications(state: AppState): number {
  return state.notifications.items.reduce((count, n) => count + (n.read ? 0 : 1), 0);
}

/** The badge text: the count, capped. */
export function badgeCount(count: number): string {
  return count > 99 ? '99+' : String(count);
}

export class Notifications {
  private readonly autoRead = new Set<string>();

  constructor(private readonly context: FeatureContext) {}

  private get state(): AppState {
    return this.context.store.getState();
  }

  private dispatch(action: Action) {
    this.context.store.dispatch(action);
  }

  /** The newest page (after sign-in and every reconnect, and when the panel opens). */
  async load(): Promise<void> {
    this.dispatch({ type: 'notifications/loading', more: false });
    try {
      const page = await call(() =>
        this.context.client.GET('/notifications', {
          params: { query: { limit: NOTIFICATIONS_PAGE_SIZE } },
        }),
      );
      this.dispatch({
        type: 'notifications/loaded',
        items: page.items,
        nextCursor: page.next_cursor ?? null,
        more: false,
      });
      this.loadNames(page.items);
    } catch (error) {
      this.dispatch({ type: 'notifications/failed', error: errorMessage(error), more: false });
    }
  }

  /** The next older page. */
  async loadMore(): Promise<void> {
    const { nextCursor, loadingMore } = this.state.notifications;
    if (!nextCursor || loadingMore) return;
    this.dispatch({ type: 'notifications/loading', more: true });
    try {
      const page = await call(() =>
        this.context.client.GET('/notifications', {
          params: { query: { limit: NOTIFICATIONS_PAGE_SIZE, cursor: nextCursor } },
        }),
      );
      this.dispatch({
        type: 'notifications/loaded',
        items: page.items,
        nextCursor: page.next_cursor ?? null,
        more: true,
      });
      this.loadNames(page.items);
    } catch (error) {
      this.dispatch({ type: 'notifications/failed', error: errorMessage(error), more: true });
    }
  }

  /** The people notifications name, so they read "Alice …" rather than "Someone …". */
  loadNames(items: NotificationView[]): void {
    const ids = items.flatMap((n) => {
      const { userId } = notificationTarget(n);
      return userId ? [userId] : [];
    });
    if (ids.length > 0) void this.context.ensureUsers(ids).catch(() => undefined);
  }

  /** Marks these read (shown at once; the server is told, and a failure reloads the list). */
  async markRead(ids: string[]): Promise<void> {
    const wanted = new Set(ids);
    const unread = this.state.notifications.items
      .filter((n) => !n.read && wanted.has(n.id))
      .map((n) => n.id);
    if (unread.length === 0) return;
    this.dispatch({ type: 'notifications/read', ids: unread });
    try {
      await call(() =>
        this.context.client.POST('/notifications/mark-read', { body: { ids: unread } }),
      );
    } catch (error) {
      await this.load();
      throw error;
    }
  }

  async markAllRead(): Promise<void> {
    this.dispatch({ type: 'notifications/read', ids: null });
    try {
      await call(() => this.context.client.POST('/notifications/mark-read', { body: {} }));
    } catch (error) {
      await this.load();
      throw error;
    }
  }

  /** `DELETE /notifications/{id}`. */
  async dismiss(id: string): Promise<void> {
    try {
      await call(() =>
        this.context.client.DELETE('/notifications/{id}', { params: { path: { id } } }),
      );
    } catch (error) {
      // Gone already (another device dismissed it): the list should not show it either.
      if (!(error instanceof ApiRequestError && error.status === 404)) throw error;
    }
    this.dispatch({ type: 'notifications/removed', id });
  }

  /** A chat is on screen: what its notifications announced is being seen. */
  async chatOpened(chatId: string): Promise<void> {
    // Each one is tried once: a failure reloads the list, which must not try again forever.
    const ids = this.state.notifications.items
      .filter((n) => !n.read && !this.autoRead.has(n.id) && notificationTarget(n).chatId === chatId)
      .map((n) => n.id);
    ids.forEach((id) => this.autoRead.add(id));
    if (ids.length > 0) await this.markRead(ids).catch(() => undefined);
  }
}
