import { describe, expect, it } from 'vitest';
import { apiError, featureHarness, noContent } from '../testing/features';
import { ALICE, CHAT, ME, message, summary } from '../testing/fixtures';
import { deleteOptions, MessageDeletion } from './messages';

function setUp() {
  const harness = featureHarness();
  const mine = message(2, { sender_id: ME });
  const theirs = message(3, { sender_id: ALICE });
  harness.store.dispatch({
    type: 'chats/loaded',
    chats: [summary(CHAT, { last_seq: 3, last_message: theirs })],
  });
  harness.store.dispatch({
    type: 'messages/page',
    chatId: CHAT,
    items: [message(1), mine, theirs],
    kind: 'newest',
    olderCursor: null,
  });
  harness.api.route('DELETE', /^\/chats\/([^/]+)\/messages\/([^/]+)$/, noContent);
  return { ...harness, mine, theirs, deletion: new MessageDeletion(harness.context) };
}

describe('deleting messages', () => {
  it('offers "for everyone" only on your own messages that are not deleted yet', () => {
    const { store, mine, theirs } = setUp();
    expect(deleteOptions(store.getState(), mine)).toEqual(['everyone', 'me']);
    expect(deleteOptions(store.getState(), theirs)).toEqual(['me']);
    expect(deleteOptions(store.getState(), { ...mine, deleted: true })).toEqual(['me']);
  });

  it('deletes for everyone: a tombstone stays', async () => {
    const { store, api, deletion, mine } = setUp();
    await deletion.delete(mine, 'everyone');
    const call = api.callsTo('DELETE', `/chats/${CHAT}/messages/${mine.id}`)[0];
    expect(call?.query.get('for')).toBe('everyone');
    const items = store.getState().messages[CHAT]!.items;
    expect(items.find((m) => m.id === mine.id)).toMatchObject({ deleted: true, ciphertext: null });
    expect(store.getState().bodies[mine.id]).toEqual({ status: 'deleted' });
  });

  it('deletes for me: it leaves my history and the chat preview moves back', async () => {
    const { store, deletion, theirs, mine } = setUp();
    await deletion.delete(theirs, 'me');
    const state = store.getState();
    expect(state.messages[CHAT]!.items.map((m) => m.id)).not.toContain(theirs.id);
    expect(state.chats[CHAT]?.last_message?.id).toBe(mine.id);
  });

  it('says why the server refused, and leaves the message as it was', async () => {
    const { store, api, deletion, theirs } = setUp();
    api.route('DELETE', /^\/chats\/([^/]+)\/messages\/([^/]+)$/, () =>
      apiError(403, 'forbidden', 'only the sender may delete a message for everyone'),
    );
    await expect(deletion.delete(theirs, 'everyone')).rejects.toThrow(
      'Only its sender can delete a message for everyone.',
    );
    expect(store.getState().messages[CHAT]!.items).toHaveLength(3);
  });

  it('treats hiding a message that is already gone as done', async () => {
    const { store, api, deletion, theirs } = setUp();
    api.route('DELETE', /^\/chats\/([^/]+)\/messages\/([^/]+)$/, () => apiError(404, 'not_found'));
    await deletion.delete(theirs, 'me');
    expect(store.getState().messages[CHAT]!.items).toHaveLength(2);
  });
});
