import type { NotificationView } from '@parley/sdk';
import { describe, expect, it } from 'vitest';
import { initialState, reduce, type Action, type AppState } from '../store';
import { CHAT, DEVICE, GROUP, ME, detail, user } from '../testing/fixtures';
import { isFeatureAction, mergeNotifications } from './state';

function notification(n: number, overrides: Partial<NotificationView> = {}): NotificationView {
  return {
    id: `00000000-0000-4000-8000-${(0xb00 + n).toString(16).padStart(12, '0')}`,
    kind: 'message',
    data: { chat_id: CHAT },
    created_at: new Date(Date.UTC(2026, 10, 28, 10, n)).toISOString(),
    read: false,
    ...overrides,
  };
}

const signedIn: Action = { type: 'auth/signedIn', user: user(ME, 'Me'), deviceId: DEVICE };
const run = (...actions: Action[]): AppState => actions.reduce(reduce, initialState);
const ids = (state: AppState) => state.notifications.items.map((n) => n.id);

describe('notifications slice', () => {
  it('loads the newest page, keeps frames newer than it, appends older pages', () => {
    const fromFrame = notification(9);
    let state = run(signedIn, {
      type: 'frame',
      event: { type: 'notification.created', data: fromFrame },
      me: ME,
      now: 0,
    });
    expect(ids(state)).toEqual([fromFrame.id]);
    state = reduce(state, { type: 'notifications/loading', more: false });
    expect(state.notifications.status).toBe('loading');
    state = reduce(state, {
      type: 'notifications/loaded',
      items: [notification(5), notification(4)],
      nextCursor: 'c1',
      more: false,
    });
    expect(ids(state)).toEqual([notification(9).id, notification(5).id, notification(4).id]);
    expect(state.notifications).toMatchObject({ status: 'ready', nextCursor: 'c1' });
    state = reduce(state, {
      type: 'notifications/loaded',
      items: [notification(2), notification(4, { read: true })],
      nextCursor: null,
      more: true,
    });
    expect(ids(state)).toEqual([9, 5, 4, 2].map((n) => notification(n).id));
    expect(state.notifications.items[2]?.read).toBe(true);
    expect(state.notifications.nextCursor).toBeNull();
  });

  it('drops what a reload no longer lists (dismissed on another device)', () => {
    let state = run(signedIn, {
      type: 'notifications/loaded',
      items: [notification(3), notification(2)],
      nextCursor: null,
      more: false,
    });
    state = reduce(state, {
      type: 'notifications/loaded',
      items: [notification(3)],
      nextCursor: null,
      more: false,
    });
    expect(ids(state)).toEqual([notification(3).id]);
  });

  it('marks some or all read, removes one, and is unchanged when nothing changes', () => {
    let state = run(signedIn, {
      type: 'notifications/loaded',
      items: [notification(3), notification(2), notification(1)],
      nextCursor: null,
      more: false,
    });
    state = reduce(state, { type: 'notifications/read', ids: [notification(2).id] });
    expect(state.notifications.items.map((n) => n.read)).toEqual([false, true, false]);
    const same = reduce(state, { type: 'notifications/read', ids: [notification(2).id] });
    expect(same).toBe(state);
    state = reduce(state, { type: 'notifications/read', ids: null });
    expect(state.notifications.items.every((n) => n.read)).toBe(true);
    state = reduce(state, { type: 'notifications/removed', id: notification(1).id });
    expect(ids(state)).toEqual([notification(3).id, notification(2).id]);
  });

  it('keeps the list when a reload fails, and reports the error', () => {
    let state = run(signedIn, {
      type: 'notifications/loaded',
      items: [notification(1)],
      nextCursor: null,
      more: false,
    });
    state = reduce(state, { type: 'notifications/failed', error: 'offline', more: false });
    expect(state.notifications).toMatchObject({ status: 'ready', error: 'offline' });
    expect(ids(state)).toHaveLength(1);
    const fresh = run(signedIn, { type: 'notifications/failed', error: 'offline', more: false });
    expect(fresh.notifications.status).toBe('error');
  });

  it('merges by id, newest first', () => {
    const merged = mergeNotifications(
      [notification(1), notification(2)],
      [notification(2, { read: true }), notification(3)],
    );
    expect(merged.map((n) => n.id)).toEqual([3, 2, 1].map((n) => notification(n).id));
    expect(merged[1]?.read).toBe(true);
  });
});

describe('avatars, invites, banner', () => {
  it('tracks each picture by media id', () => {
    let state = run(signedIn, { type: 'avatars/loading', mediaId: 'm1' });
    expect(state.avatars.m1).toEqual({ status: 'loading' });
    state = reduce(state, { type: 'avatars/ready', mediaId: 'm1', url: 'blob:x' });
    state = reduce(state, { type: 'avatars/failed', mediaId: 'm2', at: 5 });
    expect(state.avatars).toEqual({
      m1: { status: 'ready', url: 'blob:x' },
      m2: { status: 'failed', at: 5 },
    });
  });

  it('forgets a group invite when it is revoked or the group is gone', () => {
    const invite = { invite_code: 'abc', expires_at: '2026-12-05T12:00:00Z' };
    let state = run(
      signedIn,
      { type: 'chat/detailLoaded', chat: detail(GROUP, [[ME, 0]], { type: 'group' }) },
      { type: 'invites/created', chatId: GROUP, invite },
      { type: 'invites/created', chatId: CHAT, invite },
    );
    expect(state.invites[GROUP]).toEqual(invite);
    state = reduce(state, { type: 'invites/revoked', chatId: GROUP });
    expect(state.invites[GROUP]).toBeUndefined();
    // Removed from the group by an admin: the member_removed frame for me.
    state = reduce(state, {
      type: 'frame',
      event: {
        type: 'chat.member_removed',
        data: { chat_id: CHAT, user_id: ME, removed_by: 'x' },
      },
      me: ME,
      now: 0,
    });
    expect(state.invites).toEqual({});
  });

  it('sets and clears the banner; signing out resets every feature slice', () => {
    let state = run(
      signedIn,
      { type: 'banner/set', banner: 'hello' },
      { type: 'avatars/ready', mediaId: 'm', url: 'blob:y' },
    );
    expect(state.banner).toBe('hello');
    state = reduce(state, { type: 'banner/set', banner: null });
    expect(state.banner).toBeNull();
    state = reduce(state, { type: 'auth/signedOut' });
    expect(state.avatars).toEqual({});
    expect(state.notifications.items).toEqual([]);
  });

  it('tells feature actions from the core ones', () => {
    expect(isFeatureAction({ type: 'notifications/read' })).toBe(true);
    expect(isFeatureAction({ type: 'chat/removed' })).toBe(false);
    expect(isFeatureAction({ type: 'toString' })).toBe(false);
  });
});
