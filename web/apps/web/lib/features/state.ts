/**
 * The features' parts of the UI state (notifications, profile pictures, invite links, a banner
 * line) and the reducer for them. `store.ts` merges them into `AppState` and runs
 * {@link reduceFeatures} after its own reducer, so these slices also see every frame.
 */
import type { NotificationView } from '@parley/sdk';
import {
  initialCallsState,
  isCallsAction,
  reduceCalls,
  type CallsAction,
  type CallsState,
} from '../calls/state';
import type { Action, AppState } from '../store';
import type { InviteView } from './types';

export interface NotificationsState {
  /** Newest first, one per id. */
  items: NotificationView[];
  status: 'idle' | 'loading' | 'ready' | 'error';
  error: string | null;
  /** For the next (older) page; `null` when there is none. */
  nextCursor: string | null;
  loadingMore: boolean;
}

/** A profile picture, fetched from our origin and shown through a `blob:` URL. */
export type AvatarEntry =
  { status: 'loading' } | { status: 'ready'; url: string } | { status: 'failed'; at: number };

export interface FeatureState {
  notifications: NotificationsState;
  /** By media id. */
  avatars: Record<string, AvatarEntry>;
  /** A group's current invite code, by chat id (only known after an admin created it here). */
  invites: Record<string, InviteView>;
  /** A message for the whole app (e.g. the picture chosen at sign-up could not be set). */
  banner: string | null;
  calls: CallsState;
}

export const initialFeatureState: FeatureState = {
  notifications: { items: [], status: 'idle', error: null, nextCursor: null, loadingMore: false },
  avatars: {},
  invites: {},
  banner: null,
  calls: initialCallsState,
};

export type FeatureAction =
  | { type: 'notifications/loading'; more: boolean }
  | {
      type: 'notifications/loaded';
      items: NotificationView[];
      nextCursor: string | null;
      /** `false`: the newest page, which replaces the list; `true`: an older page, appended. */
      more: boolean;
    }
  | { type: 'notifications/failed'; error: string; more: boolean }
  /** `ids: null` marks every notification read. */
  | { type: 'notifications/read'; ids: string[] | null }
  | { type: 'notifications/removed'; id: string }
  | { type: 'avatars/loading'; mediaId: string }
  | { type: 'avatars/ready'; mediaId: string; url: string }
  | { type: 'avatars/failed'; mediaId: string; at: number }
  | { type: 'invites/created'; chatId: string; invite: InviteView }
  | { type: 'invites/revoked'; chatId: string }
  | { type: 'banner/set'; banner: string | null }
  | CallsAction;

const FEATURE_ACTION_TYPES: Record<Exclude<FeatureAction, CallsAction>['type'], true> = {
  'notifications/loading': true,
  'notifications/loaded': true,
  'notifications/failed': true,
  'notifications/read': true,
  'notifications/removed': true,
  'avatars/loading': true,
  'avatars/ready': true,
  'avatars/failed': true,
  'invites/created': true,
  'invites/revoked': true,
  'banner/set': true,
};

export function isFeatureAction(action: { type: string }): action is FeatureAction {
  return Object.hasOwn(FEATURE_ACTION_TYPES, action.type) || isCallsAction(action);
}

function byNewest(a: NotificationView, b: NotificationView): number {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || b.id.localeCompare(a.id);
}

/** Merges notifications by id (later copies win), newest first. */
export function mergeNotifications(
  existing: NotificationView[],
  incoming: NotificationView[],
): NotificationView[] {
  const byId = new Map<string, NotificationView>();
  for (const item of existing) byId.set(item.id, item);
  for (const item of incoming) byId.set(item.id, item);
  return [...byId.values()].sort(byNewest);
}

function reduceNotifications(state: NotificationsState, action: Action): NotificationsState {
  switch (action.type) {
    case 'notifications/loading':
      return action.more
        ? { ...state, loadingMore: true }
        : { ...state, status: state.status === 'ready' ? 'ready' : 'loading', error: null };
    case 'notifications/loaded': {
      if (action.more) {
        return {
          ...state,
          items: mergeNotifications(state.items, action.items),
          nextCursor: action.nextCursor,
          loadingMore: false,
        };
      }
      // The newest page replaces what was known, but a frame that arrived while it was in
      // flight (newer than anything on the page) stays.
      const oldestOnPage = action.items[action.items.length - 1];
      const newer = state.items.filter(
        (n) => !oldestOnPage || Date.parse(n.created_at) > Date.parse(oldestOnPage.created_at),
      );
      return {
        ...state,
        items: mergeNotifications(newer, action.items),
        status: 'ready',
        error: null,
        nextCursor: action.nextCursor,
      };
    }
    case 'notifications/failed':
      return action.more
        ? { ...state, loadingMore: false, error: action.error }
        : {
            ...state,
            status: state.status === 'ready' ? 'ready' : 'error',
            error: action.error,
          };
    case 'notifications/read': {
      const ids = action.ids ? new Set(action.ids) : null;
      let changed = false;
      const items = state.items.map((n) => {
        if (n.read || (ids && !ids.has(n.id))) return n;
        changed = true;
        return { ...n, read: true };
      });
      return changed ? { ...state, items } : state;
    }
    case 'notifications/removed': {
      const items = state.items.filter((n) => n.id !== action.id);
      return items.length === state.items.length ? state : { ...state, items };
    }
    case 'frame':
      if (action.event.type === 'notification.created') {
        return { ...state, items: mergeNotifications(state.items, [action.event.data]) };
      }
      return state;
    default:
      return state;
  }
}

function reduceAvatars(
  state: Record<string, AvatarEntry>,
  action: Action,
): Record<string, AvatarEntry> {
  switch (action.type) {
    case 'avatars/loading':
      return { ...state, [action.mediaId]: { status: 'loading' } };
    case 'avatars/ready':
      return { ...state, [action.mediaId]: { status: 'ready', url: action.url } };
    case 'avatars/failed':
      return { ...state, [action.mediaId]: { status: 'failed', at: action.at } };
    default:
      return state;
  }
}

function reduceInvites(
  state: Record<string, InviteView>,
  action: Action,
): Record<string, InviteView> {
  switch (action.type) {
    case 'invites/created':
      return { ...state, [action.chatId]: action.invite };
    case 'invites/revoked':
    case 'chat/removed': {
      if (!(action.chatId in state)) return state;
      const next = { ...state };
      delete next[action.chatId];
      return next;
    }
    default:
      return state;
  }
}

/** Runs after the app's own reducer, on every action. */
export function reduceFeatures(state: AppState, action: Action): AppState {
  const notifications = reduceNotifications(state.notifications, action);
  const avatars = reduceAvatars(state.avatars, action);
  const invites = reduceInvites(state.invites, action);
  const banner = action.type === 'banner/set' ? action.banner : state.banner;
  const calls = reduceCalls(state.calls, action, state.auth.userId ?? '');
  if (
    notifications === state.notifications &&
    avatars === state.avatars &&
    invites === state.invites &&
    banner === state.banner &&
    calls === state.calls
  ) {
    return state;
  }
  return { ...state, notifications, avatars, invites, banner, calls };
}
