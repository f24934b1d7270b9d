/**
 * Group administration on the api's rules (`openapi/openapi.json`, chats routes):
 * - admins add members (`POST /chats/{id}/members`) and remove them (`DELETE
 *   /chats/{id}/members/{user_id}`); anyone may leave (the same route with their own id); when
 *   the last admin leaves, the server makes another member admin (`chat.member_updated`);
 * - a group has one live invite code: creating one revokes the previous ("reset link"), `DELETE
 *   /chats/{id}/invite` revokes it, codes expire (default and longest: 7 days); joining with an
 *   unknown, expired or revoked code, or after an admin removed you, answers 404;
 * - roles are `admin` and `member`; admins change them (`PUT /chats/{id}/members/{user_id}/role`),
 *   every member hears it (`chat.member_updated`), and a group keeps an admin: demoting the only
 *   one answers 409 `last_admin`.
 */
import type { ChatView, MemberView } from '@parley/sdk';
import type { AppState } from '../store';
import { ApiRequestError, call } from './apiError';
import { myId, type FeatureContext } from './context';

/** `expires_in_secs` bounds of `POST /chats/{id}/invite`. */
export const INVITE_MAX_TTL_SECS = 7 * 24 * 3600;

const NOT_ADMIN = 'Only group admins can do that.';
const GONE = 'This group is not available: it does not exist or you are no longer a member.';

export function isAdmin(member: Pick<MemberView, 'role'> | undefined): boolean {
  return member?.role === 'admin';
}

/** Whether the signed-in user is an admin of the group. */
export function amAdmin(state: AppState, chatId: string): boolean {
  const me = state.auth.userId;
  const detail = state.details[chatId];
  return detail?.type === 'group' && isAdmin(detail.members.find((m) => m.user_id === me));
}

/** Members for the info panel: you first, then admins, then by name. */
export function sortedMembers(state: AppState, chatId: string): MemberView[] {
  const me = state.auth.userId;
  const name = (id: string) => state.users[id]?.name ?? '';
  return [...(state.details[chatId]?.members ?? [])].sort(
    (a, b) =>
      Number(b.user_id === me) - Number(a.user_id === me) ||
      Number(isAdmin(b)) - Number(isAdmin(a)) ||
      name(a.user_id).localeCompare(name(b.user_id)) ||
      a.user_id.localeCompare(b.user_id),
  );
}

/** The page that joins by code: `<origin>/app/join/?code=…`. */
export function inviteLink(origin: string, code: string): string {
  return `${origin.replace(/\/+$/, '')}/app/join/?code=${encodeURIComponent(code)}`;
}

/**
 * The code out of what someone pasted or opened: a bare code, or an invite link (ours or one
 * with the same path on another origin). `null` when there is none.
 */
export function parseInviteCode(input: string): string | null {
  const text = input.trim();
  if (!text) return null;
  if (/^https?:\/\//i.test(text)) {
    try {
      const code = new URL(text).searchParams.get('code')?.trim();
      return code ? code : null;
    } catch {
      return null;
    }
  }
  return /^[A-Za-z0-9_-]{1,128}$/.test(text) ? text : null;
}

export class Groups {
  constructor(private readonly context: FeatureContext) {}

  private apply(chat: ChatView) {
    this.context.store.dispatch({ type: 'chat/detailLoaded', chat });
    void this.context.ensureUsers(chat.members.map((m) => m.user_id)).catch(() => undefined);
  }

  async addMembers(chatId: string, userIds: string[]): Promise<void> {
    if (userIds.length === 0) return;
    const chat = await call(
      () =>
        this.context.client.POST('/chats/{id}/members', {
          params: { path: { id: chatId } },
          body: { user_ids: userIds },
        }),
      { forbidden: NOT_ADMIN, 404: GONE },
    );
    this.apply(chat);
  }

  /** Removes someone (admins); the `chat.member_removed` frame says the same a moment later. */
  async removeMember(chatId: string, userId: string): Promise<void> {
    await call(
      () =>
        this.context.client.DELETE('/chats/{id}/members/{user_id}', {
          params: { path: { id: chatId, user_id: userId } },
        }),
      { forbidden: NOT_ADMIN, 404: 'They are no longer a member.' },
    );
    this.context.store.dispatch({
      type: 'frame',
      event: {
        type: 'chat.member_removed',
        data: { chat_id: chatId, user_id: userId, removed_by: myId(this.context) },
      },
      me: myId(this.context),
      now: this.context.now(),
    });
  }

  /** Makes a member admin, or an admin a member (admins). */
  async setRole(chatId: string, userId: string, role: 'admin' | 'member'): Promise<void> {
    const chat = await call(
      () =>
        this.context.client.PUT('/chats/{id}/members/{user_id}/role', {
          params: { path: { id: chatId, user_id: userId } },
          body: { role },
        }),
      {
        forbidden: NOT_ADMIN,
        last_admin: 'A group needs an admin: make someone else admin first.',
        404: 'They are no longer a member.',
      },
    );
    this.apply(chat);
  }

  /** Leaves the group: it disappears from the list. */
  async leave(chatId: string): Promise<void> {
    const me = myId(this.context);
    try {
      await call(() =>
        this.context.client.DELETE('/chats/{id}/members/{user_id}', {
          params: { path: { id: chatId, user_id: me } },
        }),
      );
    } catch (error) {
      // Not a member any more (removed meanwhile): the same outcome.
      if (!(error instanceof ApiRequestError && error.status === 404)) throw error;
    }
    this.context.store.dispatch({ type: 'chat/removed', chatId });
  }

  /** A new invite code; every earlier one stops working. */
  async createInvite(chatId: string, expiresInSecs = INVITE_MAX_TTL_SECS): Promise<void> {
    const invite = await call(
      () =>
        this.context.client.POST('/chats/{id}/invite', {
          params: { path: { id: chatId }, query: { expires_in_secs: expiresInSecs } },
        }),
      { forbidden: NOT_ADMIN, 404: GONE },
    );
    this.context.store.dispatch({ type: 'invites/created', chatId, invite });
  }

  async revokeInvite(chatId: string): Promise<void> {
    await call(
      () => this.context.client.DELETE('/chats/{id}/invite', { params: { path: { id: chatId } } }),
      { forbidden: NOT_ADMIN, 404: GONE },
    );
    this.context.store.dispatch({ type: 'invites/revoked', chatId });
  }

  /** Joins by code; returns the chat id. Joining a group you are in is a no-op. */
  async join(code: string): Promise<string> {
    const chat = await call(
      () => this.context.client.POST('/chats/join', { body: { invite_code: code } }),
      {
        404: 'This invite link does not work: it may have expired or been reset by an admin, or an admin removed you from the group.',
        too_many_members: 'This group is full.',
      },
    );
    this.apply(chat);
    await this.context.loadChats().catch(() => undefined);
    return chat.id;
  }
}
