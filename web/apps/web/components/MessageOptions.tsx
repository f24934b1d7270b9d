import type { MessageView } from '@parley/sdk';
import { deleteOptions, type DeleteScope } from '../lib/features/messages';
import { formatTime } from '../lib/format';
import { useAppState, useController } from './AppProvider';
import { ConfirmDialog, type ConfirmChoice } from './Dialog';
import { useAsyncAction } from './useAsyncAction';

/** The small button beside a message that opens its options. */
export function MessageOptionsButton({
  message,
  senderName,
  onOpen,
}: {
  message: MessageView;
  senderName: string;
  onOpen: (message: MessageView) => void;
}) {
  return (
    <button
      type="button"
      className="message__options"
      aria-haspopup="dialog"
      aria-label={`Options for the message from ${senderName} at ${formatTime(message.created_at)}`}
      onClick={() => onOpen(message)}
    >
      <span aria-hidden="true">⋮</span>
    </button>
  );
}

const LABELS: Record<DeleteScope, string> = {
  everyone: 'Delete for everyone',
  me: 'Delete for me',
};

/** Deleting a message: for yourself, or (your own) for everyone. */
export function MessageOptionsDialog({
  message,
  onClose,
}: {
  message: MessageView;
  onClose: () => void;
}) {
  const state = useAppState();
  const controller = useController();
  const { busy, error, run } = useAsyncAction();
  const scopes = deleteOptions(state, message);
  const choices: ConfirmChoice[] = scopes.map((scope) => ({
    label: LABELS[scope],
    danger: scope === 'everyone',
    onChoose: async () => {
      const done = await run(async () => {
        await controller?.features.messages.delete(message, scope);
      });
      if (done) onClose();
    },
  }));
  return (
    <ConfirmDialog
      title="Delete message?"
      message={
        <>
          {scopes.includes('everyone') ? (
            <p>
              “Delete for everyone” removes it for every member of this chat; a note that it was
              deleted stays.
            </p>
          ) : null}
          <p>“Delete for me” removes it from your history only; others still see it.</p>
          <p>{scopes.length > 1 ? 'Neither can be undone.' : 'This cannot be undone.'}</p>
        </>
      }
      choices={choices}
      onClose={onClose}
      busy={busy}
      error={error}
    />
  );
}
