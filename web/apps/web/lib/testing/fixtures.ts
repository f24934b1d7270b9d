/** Builders for test data shaped like the api's answers. */
import type { ChatSummary, ChatView, MessageView, UserView } from '@parley/sdk';

export const ME = '00000000-0000-4000-8000-000000000001';
export const ALICE = '00000000-0000-4000-8000-00000000000a';
export const BOB = '00000000-0000-4000-8000-00000000000b';
export const CHAT = '00000000-0000-4000-8000-0000000000c1';
export const GROUP = '00000000-0000-4000-8000-0000000000c2';
export const DEVICE = '00000000-0000-4000-8000-0000000000d1';

let counter = 0;
export function uuid(): string {
  counter += 1;
  return `00000000-0000-4000-8000-${counter.toString(16).padStart(12, '0')}`;
}

export function user(id: string, name: string): UserView {
  return { id, name, status: '', created_at: '2026-11-01T00:00:00Z' };
}

export function message(seq: number, overrides: Partial<MessageView> = {}): MessageView {
  return {
    id: `00000000-0000-4000-9000-${seq.toString(16).padStart(12, '0')}`,
    chat_id: CHAT,
    sender_id: ALICE,
    sender_device_id: null,
    seq,
    client_msg_id: `c-${seq}`,
    ciphertext: 'aGVsbG8=',
    algorithm: 'parley.megolm.v1',
    media_ids: [],
    reply_to: null,
    created_at: new Date(Date.UTC(2026, 10, 28, 10, 0, seq)).toISOString(),
    deleted: false,
    ...overrides,
  };
}

export function summary(id: string, overrides: Partial<ChatSummary> = {}): ChatSummary {
  return {
    id,
    type: 'direct',
    name: null,
    member_count: 2,
    last_seq: 0,
    last_activity_at: '2026-11-28T09:00:00Z',
    last_message: null,
    unread_count: 0,
    ...overrides,
  };
}

export function detail(
  id: string,
  members: [string, number][],
  overrides: Partial<ChatView> = {},
): ChatView {
  return {
    id,
    type: 'direct',
    name: null,
    created_by: ME,
    created_at: '2026-11-01T00:00:00Z',
    last_seq: 0,
    last_activity_at: '2026-11-28T09:00:00Z',
    members: members.map(([user_id, read_up_to_seq]) => ({
      user_id,
      role: 'member',
      joined_at: '2026-11-01T00:00:00Z',
      read_up_to_seq,
    })),
    ...overrides,
  };
}
