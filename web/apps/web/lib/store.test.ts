import { describe, expect, it } from 'vitest';
import {
  initialState,
  mergeMessages,
  messageTicks,
  previewText,
  reduce,
  selectChatList,
  selectChatTitle,
  selectKeyChanges,
  selectTimeline,
  selectTyping,
  TYPING_TTL_MS,
  type Action,
  type AppState,
  type Body,
} from './store';
import {
  ALICE,
  BOB,
  CHAT,
  DEVICE,
  GROUP,
  ME,
  detail,
  message,
  summary,
  user,
} from './testing/fixtures';

function run(...actions: Action[]): AppState {
  return actions.reduce(reduce, initialState);
}

const signedIn: Action = { type: 'auth/signedIn', user: user(ME, 'Me'), deviceId: DEVICE };
const frame = (event: Extract<Action, { type: 'frame' }>['event'], now = 1_000): Action => ({
  type: 'frame',
  event,
  me: ME,
  now,
});

describe('chat list', () => {
  it('orders chats by newest activity first', () => {
    const state = run(signedIn, {
      type: 'chats/loaded',
      chats: [
        summary(CHAT, { last_activity_at: '2026-11-28T09:00:00Z' }),
        summary(GROUP, { type: 'group', name: 'Team', last_activity_at: '2026-11-28T11:00:00Z' }),
      ],
    });
    expect(selectChatList(state).map((c) => c.id)).toEqual([GROUP, CHAT]);
  });

  it('moves a chat up and counts unread when a message arrives', () => {
    let state = run(signedIn, {
      type: 'chats/loaded',
      chats: [
        summary(CHAT, { last_activity_at: '2026-11-28T09:00:00Z', last_seq: 4 }),
        summary(GROUP, { type: 'group', name: 'Team', last_activity_at: '2026-11-28T09:30:00Z' }),
      ],
    });
    state = reduce(state, frame({ type: 'message.created', data: message(5) }));
    const chat = state.chats[CHAT]!;
    expect(chat.unread_count).toBe(1);
    expect(chat.last_seq).toBe(5);
    expect(chat.last_message?.seq).toBe(5);
    expect(selectChatList(state)[0]?.id).toBe(CHAT);
    // The same message again (a replay overlapping a page) is not counted twice.
    state = reduce(state, frame({ type: 'message.created', data: message(5) }));
    expect(state.chats[CHAT]!.unread_count).toBe(1);
  });

  it('does not count messages of the open chat, nor your own', () => {
    let state = run(
      signedIn,
      { type: 'chats/loaded', chats: [summary(CHAT, { last_seq: 1, unread_count: 2 })] },
      { type: 'chat/opened', chatId: CHAT },
    );
    state = reduce(state, frame({ type: 'message.created', data: message(2) }));
    expect(state.chats[CHAT]!.unread_count).toBe(2);
    state = reduce(state, { type: 'chat/opened', chatId: null });
    state = reduce(state, frame({ type: 'message.created', data: message(3, { sender_id: ME }) }));
    // Sending moves your own read mark to your message.
    expect(state.chats[CHAT]!.unread_count).toBe(0);
  });

  it('lowers unread when your read mark moves (another device of yours read it)', () => {
    let state = run(signedIn, {
      type: 'chats/loaded',
      chats: [summary(CHAT, { last_seq: 10, unread_count: 4 })],
    });
    state = reduce(
      state,
      frame({ type: 'chat.read', data: { chat_id: CHAT, user_id: ME, up_to_seq: 8 } }),
    );
    expect(state.chats[CHAT]!.unread_count).toBe(2);
    state = reduce(state, { type: 'chat/readLocally', chatId: CHAT, upToSeq: 10 });
    expect(state.chats[CHAT]!.unread_count).toBe(0);
  });

  it('names direct chats after the other member', () => {
    const state = run(
      signedIn,
      { type: 'chats/loaded', chats: [summary(CHAT)] },
      {
        type: 'chat/detailLoaded',
        chat: detail(CHAT, [
          [ME, 0],
          [ALICE, 0],
        ]),
      },
      { type: 'users/loaded', users: [user(ALICE, 'Alice')] },
    );
    expect(selectChatTitle(state, CHAT)).toBe('Alice');
  });

  it('renames and re-pictures people live, from what changed only', () => {
    const picture = '0190a3a0-0000-7000-8000-0000000000aa';
    let state = run(
      signedIn,
      { type: 'chats/loaded', chats: [summary(CHAT)] },
      {
        type: 'chat/detailLoaded',
        chat: detail(CHAT, [
          [ME, 0],
          [ALICE, 0],
        ]),
      },
      { type: 'users/loaded', users: [{ ...user(ALICE, 'Alice'), status: 'hiking' }] },
      frame({
        type: 'user.updated',
        data: { user_id: ALICE, name: 'Alice B.', avatar_media_id: picture },
      }),
    );
    expect(selectChatTitle(state, CHAT)).toBe('Alice B.');
    expect(state.users[ALICE]).toMatchObject({
      status: 'hiking',
      avatar_media_id: picture,
      avatar_url: `/media/${picture}`,
    });
    state = reduce(
      state,
      frame({ type: 'user.updated', data: { user_id: ALICE, avatar_media_id: null } }),
    );
    expect(state.users[ALICE]).toMatchObject({
      name: 'Alice B.',
      avatar_media_id: null,
      avatar_url: null,
    });
    // Someone not loaded yet is left for the full profile when they are.
    const unknown = reduce(
      state,
      frame({ type: 'user.updated', data: { user_id: BOB, name: 'B' } }),
    );
    expect(unknown.users[BOB]).toBeUndefined();
  });

  it('previews the last message as far as it can be read', () => {
    let state = run(signedIn, {
      type: 'chats/loaded',
      chats: [summary(CHAT, { last_seq: 1, last_message: message(1) })],
    });
    expect(previewText(state, state.chats[CHAT]!)).toBe('Encrypted message');
    state = reduce(state, {
      type: 'bodies/set',
      bodies: { [message(1).id]: { status: 'ok', text: 'hi' } },
    });
    expect(previewText(state, state.chats[CHAT]!)).toBe('hi');
    const file = {
      media_id: 'm',
      content_type: 'image/jpeg',
      size: 10,
      name: 'beach.jpg',
      key: 'k',
      iv: 'i',
      sha256: 'h',
      algorithm: 'parley.aes-ctr-256.v1' as const,
    };
    const preview = (body: Body) =>
      previewText(
        reduce(state, { type: 'bodies/set', bodies: { [message(1).id]: body } }),
        state.chats[CHAT]!,
      );
    expect(preview({ status: 'ok', text: '', file })).toBe('Photo');
    expect(preview({ status: 'ok', text: 'sun', file })).toBe('Photo: sun');
    expect(preview({ status: 'ok', text: '', file: { ...file, content_type: 'video/mp4' } })).toBe(
      'Video',
    );
    expect(preview({ status: 'ok', text: '', file: { ...file, content_type: 'text/plain' } })).toBe(
      'File: beach.jpg',
    );
    expect(preview({ status: 'waiting' })).toBe('Waiting for the key to this message');
    expect(preview({ status: 'error', reason: 'x' })).toBe('Cannot decrypt this message');
    state = reduce(
      state,
      frame({
        type: 'message.deleted',
        data: { chat_id: CHAT, seq: 1, message_id: message(1).id, for: 'everyone' },
      }),
    );
    expect(previewText(state, state.chats[CHAT]!)).toBe('Message deleted');
  });

  it('drops a chat you were removed from', () => {
    let state = run(signedIn, { type: 'chats/loaded', chats: [summary(GROUP, { type: 'group' })] });
    state = reduce(
      state,
      frame({
        type: 'chat.member_removed',
        data: { chat_id: GROUP, user_id: ME, removed_by: ALICE },
      }),
    );
    expect(state.chats[GROUP]).toBeUndefined();
  });

  it('keeps a chat a frame moved on while the list was loading', () => {
    let state = run(signedIn, { type: 'chats/loaded', chats: [summary(CHAT, { last_seq: 1 })] });
    state = reduce(state, frame({ type: 'message.created', data: message(2) }));
    state = reduce(state, { type: 'chats/loaded', chats: [summary(CHAT, { last_seq: 1 })] });
    expect(state.chats[CHAT]!.last_seq).toBe(2);
  });
});

describe('messages', () => {
  it('merges pages and frames in seq order without duplicates', () => {
    expect(
      mergeMessages([message(3), message(5)], [message(4), message(5)]).map((m) => m.seq),
    ).toEqual([3, 4, 5]);
    let state = run(signedIn, {
      type: 'messages/page',
      chatId: CHAT,
      items: [message(10), message(9)],
      kind: 'newest',
      olderCursor: '9',
    });
    state = reduce(state, {
      type: 'messages/page',
      chatId: CHAT,
      items: [message(8), message(7)],
      kind: 'older',
      olderCursor: null,
    });
    state = reduce(state, frame({ type: 'message.created', data: message(11) }));
    const chat = state.messages[CHAT]!;
    expect(chat.items.map((m) => m.seq)).toEqual([7, 8, 9, 10, 11]);
    expect(chat.olderCursor).toBeNull();
  });

  it('keeps the older cursor when the newest page is read again', () => {
    let state = run(signedIn, {
      type: 'messages/page',
      chatId: CHAT,
      items: [message(10)],
      kind: 'newest',
      olderCursor: '10',
    });
    state = reduce(state, {
      type: 'messages/page',
      chatId: CHAT,
      items: [message(11)],
      kind: 'newer',
    });
    expect(state.messages[CHAT]!.olderCursor).toBe('10');
  });

  it('replaces a pending message when the server confirms it', () => {
    let state = run(signedIn, {
      type: 'message/pending',
      message: {
        client_msg_id: 'c-9',
        chat_id: CHAT,
        text: 'hi',
        created_at: '2026-11-28T10:00:00Z',
        status: 'sending',
      },
    });
    expect(selectTimeline(state, CHAT).map((i) => i.kind)).toEqual(['pending']);
    state = reduce(state, {
      type: 'message/failed',
      chatId: CHAT,
      clientMsgId: 'c-9',
      error: 'crypto core not wired yet',
    });
    expect(state.messages[CHAT]!.pending[0]).toMatchObject({
      status: 'failed',
      error: 'crypto core not wired yet',
    });
    state = reduce(state, { type: 'message/sent', message: message(9, { sender_id: ME }), me: ME });
    expect(selectTimeline(state, CHAT).map((i) => i.kind)).toEqual(['message']);
  });

  it('turns a message deleted for everyone into a tombstone, and one deleted for me into nothing', () => {
    let state = run(signedIn, {
      type: 'messages/page',
      chatId: CHAT,
      items: [message(1), message(2)],
      kind: 'newest',
    });
    state = reduce(
      state,
      frame({
        type: 'message.deleted',
        data: { chat_id: CHAT, seq: 1, message_id: message(1).id, for: 'everyone' },
      }),
    );
    state = reduce(
      state,
      frame({
        type: 'message.deleted',
        data: { chat_id: CHAT, seq: 2, message_id: message(2).id, for: 'me' },
      }),
    );
    expect(state.messages[CHAT]!.items).toEqual([
      { ...message(1), ciphertext: null, media_ids: [], deleted: true },
    ]);
    expect(state.bodies[message(1).id]).toEqual({ status: 'deleted' });
  });
});

describe('receipts', () => {
  it('shows read once every other member read up to the message', () => {
    let state = run(signedIn, {
      type: 'chat/detailLoaded',
      chat: detail(
        GROUP,
        [
          [ME, 5],
          [ALICE, 3],
          [BOB, 4],
        ],
        { type: 'group' },
      ),
    });
    const mine = message(4, { chat_id: GROUP, sender_id: ME });
    expect(messageTicks(state, mine)).toBe('sent');
    state = reduce(
      state,
      frame({ type: 'chat.read', data: { chat_id: GROUP, user_id: ALICE, up_to_seq: 4 } }),
    );
    expect(messageTicks(state, mine)).toBe('read');
    // Read marks never move back.
    state = reduce(
      state,
      frame({ type: 'chat.read', data: { chat_id: GROUP, user_id: ALICE, up_to_seq: 2 } }),
    );
    expect(messageTicks(state, mine)).toBe('read');
  });

  it('counts new members and forgets removed ones', () => {
    let state = run(
      signedIn,
      { type: 'chats/loaded', chats: [summary(GROUP, { type: 'group', member_count: 2 })] },
      {
        type: 'chat/detailLoaded',
        chat: detail(
          GROUP,
          [
            [ME, 0],
            [ALICE, 0],
          ],
          { type: 'group' },
        ),
      },
    );
    state = reduce(
      state,
      frame({ type: 'chat.member_added', data: { chat_id: GROUP, user_ids: [BOB], added_by: ME } }),
    );
    expect(state.chats[GROUP]!.member_count).toBe(3);
    expect(state.details[GROUP]!.members.map((m) => m.user_id)).toEqual([ME, ALICE, BOB]);
    state = reduce(
      state,
      frame({
        type: 'chat.member_removed',
        data: { chat_id: GROUP, user_id: ALICE, removed_by: ME },
      }),
    );
    expect(state.chats[GROUP]!.member_count).toBe(2);
    state = reduce(
      state,
      frame({ type: 'chat.member_updated', data: { chat_id: GROUP, user_id: BOB, role: 'admin' } }),
    );
    expect(state.details[GROUP]!.members.find((m) => m.user_id === BOB)?.role).toBe('admin');
  });
});

describe('typing', () => {
  it('shows others typing until it expires or their message arrives', () => {
    let state = run(
      signedIn,
      frame({ type: 'typing', data: { chat_id: CHAT, user_id: ALICE } }, 1_000),
    );
    state = reduce(state, frame({ type: 'typing', data: { chat_id: CHAT, user_id: ME } }, 1_000));
    expect(selectTyping(state, CHAT)).toEqual([ALICE]);
    expect(reduce(state, { type: 'typing/expire', now: 1_000 + TYPING_TTL_MS - 1 })).toBe(state);
    expect(
      selectTyping(reduce(state, { type: 'typing/expire', now: 1_000 + TYPING_TTL_MS }), CHAT),
    ).toEqual([]);
    state = reduce(state, frame({ type: 'message.created', data: message(1) }));
    expect(selectTyping(state, CHAT)).toEqual([]);
  });
});

describe('sign out', () => {
  it('forgets everything', () => {
    const state = run(
      signedIn,
      { type: 'chats/loaded', chats: [summary(CHAT)] },
      { type: 'auth/signedOut', error: 'This session was signed out.' },
    );
    expect(state).toEqual({
      ...initialState,
      auth: {
        status: 'signed_out',
        userId: null,
        deviceId: null,
        error: 'This session was signed out.',
      },
    });
  });
});

describe('encryption state', () => {
  it('keeps a few notices per chat, shows the chat members’ key changes, tracks uploads', () => {
    let state = run(
      signedIn,
      {
        type: 'chat/detailLoaded',
        chat: detail(CHAT, [
          [ME, 0],
          [ALICE, 0],
        ]),
      },
      {
        type: 'e2ee/keyChanges',
        changes: [
          {
            user_id: ALICE,
            device_id: 'd1',
            display_name: null,
            trusted_ed25519: 'a',
            presented_ed25519: 'b',
          },
          {
            user_id: BOB,
            device_id: 'd2',
            display_name: null,
            trusted_ed25519: 'c',
            presented_ed25519: 'd',
          },
        ],
      },
    );
    expect(selectKeyChanges(state, CHAT).map((c) => c.user_id)).toEqual([ALICE]);
    for (let i = 0; i < 7; i += 1) {
      state = reduce(state, { type: 'e2ee/notice', chatId: CHAT, text: `n${i % 6}` });
    }
    expect(state.notices[CHAT]).toEqual(['n2', 'n3', 'n4', 'n5', 'n0']);
    state = reduce(state, { type: 'e2ee/noticesDismissed', chatId: CHAT });
    expect(state.notices[CHAT]).toBeUndefined();

    state = reduce(state, {
      type: 'message/pending',
      message: {
        client_msg_id: 'c1',
        chat_id: CHAT,
        text: '',
        created_at: '2026-11-28T12:00:00Z',
        status: 'uploading',
        file: { name: 'a.mp4', size: 100, content_type: 'video/mp4', sent: 0 },
      },
    });
    state = reduce(state, { type: 'message/progress', chatId: CHAT, clientMsgId: 'c1', sent: 60 });
    expect(state.messages[CHAT]?.pending[0]?.file?.sent).toBe(60);
    state = reduce(state, {
      type: 'message/failed',
      chatId: CHAT,
      clientMsgId: 'c1',
      error: 'down',
    });
    state = reduce(state, {
      type: 'message/status',
      chatId: CHAT,
      clientMsgId: 'c1',
      status: 'uploading',
    });
    expect(state.messages[CHAT]?.pending[0]).toMatchObject({ status: 'uploading' });
    expect(state.messages[CHAT]?.pending[0]?.error).toBeUndefined();
  });
});
