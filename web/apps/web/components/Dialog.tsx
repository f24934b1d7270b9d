import { useEffect, useId, useRef, type ReactNode } from 'react';
import { ErrorAlert } from './ErrorAlert';

/**
 * A modal `<dialog>`: the browser traps focus in it and closes it with Escape; focus goes back
 * to what had it before. Mount it to open it; `onClose` runs however it closes.
 */
export function Dialog({
  title,
  onClose,
  children,
  describedBy,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  /** The id of the element that explains the dialog, if any. */
  describedBy?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const onCloseRef = useRef(onClose);
  useEffect(() => {
    onCloseRef.current = onClose;
  }, [onClose]);

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    // The browser focuses the first control; the safe one (marked) is where a stray Enter goes.
    dialog.querySelector<HTMLElement>('[data-autofocus]')?.focus();
    const closed = () => onCloseRef.current();
    dialog.addEventListener('close', closed);
    return () => {
      dialog.removeEventListener('close', closed);
      if (dialog.open) dialog.close();
      if (previous?.isConnected) previous.focus();
    };
  }, []);

  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      aria-describedby={describedBy}
      onClick={(event) => {
        // A click on the backdrop (the dialog element itself, outside its content) closes it.
        if (event.target === event.currentTarget) ref.current?.close();
      }}
    >
      <div className="dialog__content">
        <h2 id={titleId} className="dialog__title">
          {title}
        </h2>
        {children}
      </div>
    </dialog>
  );
}

export interface ConfirmChoice {
  label: string;
  onChoose: () => Promise<void> | void;
  danger?: boolean;
}

/**
 * Asks before something that cannot be undone. Each choice runs in turn with the buttons
 * disabled; a failure is shown in the dialog, which stays open.
 */
export function ConfirmDialog({
  title,
  message,
  choices,
  onClose,
  busy,
  error,
}: {
  title: string;
  message: ReactNode;
  choices: ConfirmChoice[];
  onClose: () => void;
  busy: boolean;
  error: string | null;
}) {
  const messageId = useId();
  return (
    <Dialog title={title} onClose={onClose} describedBy={messageId}>
      <div id={messageId} className="dialog__message">
        {message}
      </div>
      <ErrorAlert error={error} />
      <div className="dialog__actions">
        {choices.map((choice) => (
          <button
            key={choice.label}
            type="button"
            className={`button${choice.danger ? ' button--danger' : ''}`}
            disabled={busy}
            onClick={() => void choice.onChoose()}
          >
            {choice.label}
          </button>
        ))}
        <button type="button" className="button button--quiet" onClick={onClose} data-autofocus>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}
