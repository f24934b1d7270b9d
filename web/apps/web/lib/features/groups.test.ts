import type { ChatView } from '@parley/sdk';
import { describe, expect, it } from 'vitest';
import { initialState, reduce } from '../store';
import { apiError, featureHarness, noContent } from '../testing/features';
import { ALICE, BOB, GROUP, ME, detail, summary, user } from '../testing/fixtures';
import { amAdmin, Groups, inviteLink, parseInviteCode, sortedMembers } from './groups';

function group(members: [string, string][]): ChatView {
  const chat = detail(
    GROUP,
    members.map(([id]) => [id, 0]),
    { type: 'group', name: 'Hiking' },
  );
  return {
    ...chat,
    members: chat.members.map((m, i) => ({ ...m, role: members[i]![1] })),
  };
}

function setUp(
  members: [string, string][] = [
    [ME, 'admin'],
    [ALICE, 'member'],
  ],
) {
  const harness = featureHarness();
  const chat = group(members);
  harness.api.details.set(GROUP, chat);
  harness.store.dispatch({
    type: 'chats/loaded',
    chats: [summary(GROUP, { type: 'group', name: 'Hiking', member_count: members.length })],
  });
  harness.store.dispatch({ type: 'chat/detailLoaded', chat });
  return { ...harness, groups: new Groups(harness.context) };
}

describe('group helpers', () => {
  it('knows who is admin and lists you first, then admins, then by name', () => {
    const state = [
      { type: 'auth/signedIn' as const, user: user(ME, 'Me'), deviceId: 'd' },
      {
        type: 'users/loaded' as const,
        users: [user(ALICE, 'Alice'), user(BOB, 'Bob'), user('c', 'Carol')],
      },
      {
        type: 'chat/detailLoaded' as const,
        chat: group([
          ['c', 'member'],
          [ALICE, 'member'],
          [BOB, 'admin'],
          [ME, 'member'],
        ]),
      },
    ].reduce(reduce, initialState);
    expect(sortedMembers(state, GROUP).map((m) => m.user_id)).toEqual([ME, BOB, ALICE, 'c']);
    expect(amAdmin(state, GROUP)).toBe(false);
  });

  it('builds and reads invite links', () => {
    expect(inviteLink('https://parley.example/', 'a b/c')).toBe(
      'https://parley.example/app/join/?code=a%20b%2Fc',
    );
    expect(parseInviteCode('  Zx_9-a ')).toBe('Zx_9-a');
    expect(parseInviteCode('http://127.0.0.1:8080/app/join/?code=Zx9')).toBe('Zx9');
    expect(parseInviteCode('https://x.example/app/join/')).toBeNull();
    expect(parseInviteCode('not a code!')).toBeNull();
    expect(parseInviteCode('')).toBeNull();
  });
});

describe('Groups', () => {
  it('adds members and loads their profiles', async () => {
    const { groups, api, store, ensured } = setUp();
    api.route('POST', /^\/chats\/([^/]+)\/members$/, (call) => {
      const { user_ids: ids } = call.body as { user_ids: string[] };
      return Response.json(
        group([
          [ME, 'admin'],
          [ALICE, 'member'],
          ...ids.map((id): [string, string] => [id, 'member']),
        ]),
      );
    });
    await groups.addMembers(GROUP, [BOB]);
    expect(api.callsTo('POST', `/chats/${GROUP}/members`)[0]?.body).toEqual({ user_ids: [BOB] });
    expect(store.getState().details[GROUP]?.members.map((m) => m.user_id)).toContain(BOB);
    expect(ensured.flat()).toContain(BOB);
  });

  it('says clearly when only admins may do it', async () => {
    const { groups, api } = setUp([
      [ME, 'member'],
      [ALICE, 'admin'],
    ]);
    api.route('POST', /^\/chats\/([^/]+)\/members$/, () =>
      apiError(403, 'forbidden', 'only group admins may do this'),
    );
    await expect(groups.addMembers(GROUP, [BOB])).rejects.toThrow('Only group admins can do that.');
    api.route('POST', /^\/chats\/([^/]+)\/members$/, () =>
      apiError(400, 'too_many_members', 'at most 256 members per request and 1024 per group'),
    );
    await expect(groups.addMembers(GROUP, [BOB])).rejects.toThrow(
      'At most 256 members per request and 1024 per group.',
    );
  });

  it('removes a member at once, and leaves', async () => {
    const { groups, api, store } = setUp();
    api.route('DELETE', /^\/chats\/([^/]+)\/members\/([^/]+)$/, noContent);
    await groups.removeMember(GROUP, ALICE);
    expect(store.getState().details[GROUP]?.members.map((m) => m.user_id)).toEqual([ME]);
    expect(store.getState().chats[GROUP]?.member_count).toBe(1);
    await groups.leave(GROUP);
    expect(api.callsTo('DELETE', `/chats/${GROUP}/members/${ME}`)).toHaveLength(1);
    expect(store.getState().chats[GROUP]).toBeUndefined();
    expect(store.getState().details[GROUP]).toBeUndefined();
  });

  it('makes a member admin and an admin a member, and says when the group needs its admin', async () => {
    const { groups, api, store } = setUp();
    api.route('PUT', /^\/chats\/([^/]+)\/members\/([^/]+)\/role$/, (call) => {
      const { role } = call.body as { role: string };
      return Response.json(
        group([
          [ME, 'admin'],
          [ALICE, role],
        ]),
      );
    });
    await groups.setRole(GROUP, ALICE, 'admin');
    expect(api.callsTo('PUT', `/chats/${GROUP}/members/${ALICE}/role`)[0]?.body).toEqual({
      role: 'admin',
    });
    const alice = () => store.getState().details[GROUP]?.members.find((m) => m.user_id === ALICE);
    expect(alice()?.role).toBe('admin');
    await groups.setRole(GROUP, ALICE, 'member');
    expect(alice()?.role).toBe('member');

    api.route('PUT', /^\/chats\/([^/]+)\/members\/([^/]+)\/role$/, () =>
      apiError(409, 'last_admin', 'a group keeps at least one admin'),
    );
    await expect(groups.setRole(GROUP, ME, 'member')).rejects.toThrow(
      'A group needs an admin: make someone else admin first.',
    );
  });

  it('creates, resets and revokes the invite code', async () => {
    const { groups, api, store } = setUp();
    let made = 0;
    api.route('POST', /^\/chats\/([^/]+)\/invite$/, () => {
      made += 1;
      return Response.json(
        { invite_code: `code${made}`, expires_at: '2026-12-05T12:00:00Z' },
        { status: 201 },
      );
    });
    api.route('DELETE', /^\/chats\/([^/]+)\/invite$/, noContent);
    await groups.createInvite(GROUP);
    expect(api.callsTo('POST', `/chats/${GROUP}/invite`)[0]?.query.get('expires_in_secs')).toBe(
      '604800',
    );
    await groups.createInvite(GROUP, 3600);
    expect(store.getState().invites[GROUP]?.invite_code).toBe('code2');
    await groups.revokeInvite(GROUP);
    expect(store.getState().invites[GROUP]).toBeUndefined();
  });

  it('joins by code and explains a code that does not work', async () => {
    const { groups, api, store } = setUp();
    api.route('POST', /^\/chats\/join$/, (call) => {
      const { invite_code: code } = call.body as { invite_code: string };
      return code === 'good'
        ? Response.json(
            group([
              [ME, 'member'],
              [ALICE, 'admin'],
            ]),
          )
        : apiError(404, 'not_found', 'not found');
    });
    await expect(groups.join('good')).resolves.toBe(GROUP);
    expect(store.getState().details[GROUP]).toBeDefined();
    await expect(groups.join('bad')).rejects.toThrow(/expired or been reset/);
  });
});
