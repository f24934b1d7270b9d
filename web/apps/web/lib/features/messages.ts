/**
 * Deleting messages (`DELETE /chats/{id}/messages/{message_id}?for=`): `me` hides one from your
 * own history (any message you can see), `everyone` erases it for all members, leaving a
 * tombstone (its sender only, at any time). Others learn it from the `message.deleted` frame;
 * the reducer applies the same frame here as soon as the server agreed.
 */
import type { MessageView } from '@parley/sdk';
import type { AppState } from '../store';
import { ApiRequestError, call } from './apiError';
import { myId, type FeatureContext } from './context';

export type DeleteScope = 'me' | 'everyone';

/** Which deletions the api allows the signed-in user for this message. */
export function deleteOptions(state: AppState, message: MessageView): DeleteScope[] {
  const mine = message.sender_id === state.auth.userId;
  return mine && !message.deleted ? ['everyone', 'me'] : ['me'];
}

export class MessageDeletion {
  constructor(private readonly context: FeatureContext) {}

  async delete(message: MessageView, scope: DeleteScope): Promise<void> {
    const me = myId(this.context);
    try {
      await call(
        () =>
          this.context.client.DELETE('/chats/{id}/messages/{message_id}', {
            params: {
              path: { id: message.chat_id, message_id: message.id },
              query: { for: scope },
            },
          }),
        {
          forbidden: 'Only its sender can delete a message for everyone.',
          404: 'That message is not there any more.',
        },
      );
    } catch (error) {
      // Already gone for us: show it gone. Anything else stays as it was.
      if (!(error instanceof ApiRequestError && error.status === 404 && scope === 'me')) {
        throw error;
      }
    }
    this.context.store.dispatch({
      type: 'frame',
      event: {
        type: 'message.deleted',
        data: { chat_id: message.chat_id, seq: message.seq, message_id: message.id, for: scope },
      },
      me,
      now: this.context.now(),
    });
  }
}
