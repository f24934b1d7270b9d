import type { NotificationView } from '@parley/sdk';
import { describe, expect, it } from 'vitest';
import { initialState, reduce, type AppState } from '../store';
import { apiError, featureHarness, noContent } from '../testing/features';
import { ALICE, BOB, CHAT, GROUP, ME, detail, summary, user } from '../testing/fixtures';
import {
  badgeCount,
  describeNotification,
  notificationTarget,
  Notifications,
  selectUnreadNotifications,
} from './notifications';

function notification(n: number, overrides: Partial<NotificationView> = {}): NotificationView {
  return {
    id: `00000000-0000-4000-8000-${(0xb00 + n).toString(16).padStart(12, '0')}`,
    kind: 'message',
    data: { chat_id: CHAT, sender_id: ALICE, message_id: 'm', seq: n },
    created_at: new Date(Date.UTC(2026, 10, 28, 10, n)).toISOString(),
    read: false,
    ...overrides,
  };
}

function stateWithNames(): AppState {
  return [
    { type: 'users/loaded' as const, users: [user(ALICE, 'Alice'), user(BOB, 'Bob')] },
    {
      type: 'chats/loaded' as const,
      chats: [summary(CHAT), summary(GROUP, { type: 'group', name: 'Hiking' })],
    },
    {
      type: 'chat/detailLoaded' as const,
      chat: detail(CHAT, [
        [ME, 0],
        [ALICE, 0],
      ]),
    },
  ].reduce(reduce, initialState);
}

describe('what a notification says', () => {
  it('reads ids out of data, ignoring anything malformed', () => {
    expect(notificationTarget(notification(1))).toEqual({
      chatId: CHAT,
      userId: ALICE,
      callId: null,
    });
    expect(
      notificationTarget({ kind: 'added_to_group', data: { chat_id: GROUP, added_by: BOB } }),
    ).toEqual({ chatId: GROUP, userId: BOB, callId: null });
    expect(notificationTarget({ kind: 'message', data: { chat_id: 7, sender_id: '' } })).toEqual({
      chatId: null,
      userId: null,
      callId: null,
    });
    expect(notificationTarget({ kind: 'message', data: null }).chatId).toBeNull();
    expect(notificationTarget({ kind: 'message', data: 'text' }).chatId).toBeNull();
  });

  it('names people and groups it knows', () => {
    const state = stateWithNames();
    expect(describeNotification(state, notification(1))).toBe('New message from Alice');
    expect(
      describeNotification(
        state,
        notification(2, { data: { chat_id: GROUP, sender_id: BOB, seq: 1 } }),
      ),
    ).toBe('New message from Bob in Hiking');
    expect(
      describeNotification(
        state,
        notification(3, { kind: 'added_to_group', data: { chat_id: GROUP, added_by: ALICE } }),
      ),
    ).toBe('Alice added you to Hiking');
    expect(
      describeNotification(
        state,
        notification(4, { kind: 'added_to_group', data: { chat_id: 'unknown', added_by: 'x' } }),
      ),
    ).toBe('Someone added you to a group');
    expect(
      describeNotification(
        state,
        notification(5, { kind: 'missed_call', data: { chat_id: CHAT, call_id: 'c' } }),
      ),
    ).toBe('Missed call from Someone');
    expect(describeNotification(state, notification(6, { kind: 'future_kind', data: {} }))).toBe(
      'Something new',
    );
  });

  it('counts unread and caps the badge', () => {
    const state = reduce(stateWithNames(), {
      type: 'notifications/loaded',
      items: [notification(1), notification(2, { read: true }), notification(3)],
      nextCursor: null,
      more: false,
    });
    expect(selectUnreadNotifications(state)).toBe(2);
    expect(badgeCount(7)).toBe('7');
    expect(badgeCount(100)).toBe('99+');
  });
});

describe('Notifications', () => {
  function setUp() {
    const harness = featureHarness();
    const pages: Record<string, { items: NotificationView[]; next_cursor: string | null }> = {
      first: { items: [notification(3), notification(2)], next_cursor: 'older' },
      older: { items: [notification(1)], next_cursor: null },
    };
    harness.api.route('GET', /^\/notifications$/, (call) =>
      Response.json(pages[call.query.get('cursor') ?? 'first']),
    );
    harness.api.route('POST', /^\/notifications\/mark-read$/, noContent);
    harness.api.route('DELETE', /^\/notifications\/([^/]+)$/, noContent);
    return { ...harness, notifications: new Notifications(harness.context) };
  }

  it('loads pages and the names they mention', async () => {
    const { store, notifications, ensured, api } = setUp();
    await notifications.load();
    expect(store.getState().notifications.items).toHaveLength(2);
    expect(api.callsTo('GET', '/notifications')[0]?.query.get('limit')).toBe('50');
    await notifications.loadMore();
    expect(store.getState().notifications.items).toHaveLength(3);
    expect(api.callsTo('GET', '/notifications')[1]?.query.get('cursor')).toBe('older');
    await notifications.loadMore();
    expect(api.callsTo('GET', '/notifications')).toHaveLength(2);
    expect(ensured.flat()).toContain(ALICE);
  });

  it('marks read one or all, and dismisses', async () => {
    const { store, notifications, api } = setUp();
    await notifications.load();
    await notifications.markRead([notification(3).id, notification(3).id, 'not-loaded']);
    expect(api.callsTo('POST', '/notifications/mark-read')[0]?.body).toEqual({
      ids: [notification(3).id],
    });
    await notifications.markRead([notification(3).id]);
    expect(api.callsTo('POST', '/notifications/mark-read')).toHaveLength(1);
    await notifications.markAllRead();
    expect(api.callsTo('POST', '/notifications/mark-read')[1]?.body).toEqual({});
    expect(selectUnreadNotifications(store.getState())).toBe(0);
    await notifications.dismiss(notification(2).id);
    expect(store.getState().notifications.items.map((n) => n.id)).toEqual([notification(3).id]);
  });

  it('reloads when marking read fails, and says why', async () => {
    const { store, notifications, api } = setUp();
    await notifications.load();
    api.route('POST', /^\/notifications\/mark-read$/, () => apiError(500, 'internal'));
    await expect(notifications.markRead([notification(3).id])).rejects.toThrow(
      'The server had a problem',
    );
    expect(store.getState().notifications.items[0]?.read).toBe(false);
  });

  it('treats dismissing a notification that is already gone as done', async () => {
    const { store, notifications, api } = setUp();
    await notifications.load();
    api.route('DELETE', /^\/notifications\/([^/]+)$/, () => apiError(404, 'not_found'));
    await notifications.dismiss(notification(3).id);
    expect(store.getState().notifications.items).toHaveLength(1);
  });

  it("marks a chat's notifications read when it is opened, trying each once", async () => {
    const { notifications, api } = setUp();
    await notifications.load();
    api.route('POST', /^\/notifications\/mark-read$/, () => apiError(503, 'unavailable'));
    await notifications.chatOpened(CHAT);
    await notifications.chatOpened(CHAT);
    expect(api.callsTo('POST', '/notifications/mark-read')).toHaveLength(1);
    await notifications.chatOpened(GROUP);
    expect(api.callsTo('POST', '/notifications/mark-read')).toHaveLength(1);
  });

  it('reports a failed first load', async () => {
    const { store, notifications, api } = setUp();
    api.route('GET', /^\/notifications$/, () => apiError(429, 'rate_limited'));
    await notifications.load();
    expect(store.getState().notifications).toMatchObject({
      status: 'error',
      error: 'Too many requests. Wait a moment and try again.',
    });
  });
});
