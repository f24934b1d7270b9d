import type { MessageView } from '@parley/sdk';
import type { ReactNode } from 'react';
import { formatTime } from '../lib/format';
import type { Body, PendingMessage, Ticks } from '../lib/store';

const TICK_TEXT: Record<Ticks, { glyph: string; label: string }> = {
  sending: { glyph: '○', label: 'Sending' },
  failed: { glyph: '!', label: 'Not sent' },
  sent: { glyph: '✓', label: 'Sent' },
  read: { glyph: '✓✓', label: 'Read' },
};

function TicksMark({ ticks }: { ticks: Ticks }) {
  const { glyph, label } = TICK_TEXT[ticks];
  return (
    <span className={`ticks ticks--${ticks}`} role="img" aria-label={label} title={label}>
      {glyph}
    </span>
  );
}

function BodyText({ body, deleted }: { body: Body | undefined; deleted: boolean }) {
  if (deleted || body?.status === 'deleted') {
    return <p className="bubble__text bubble__text--muted">Message deleted</p>;
  }
  if (body?.status === 'ok') {
    return <p className="bubble__text">{body.text}</p>;
  }
  return (
    <p
      className="bubble__text bubble__text--muted"
      title={body?.status === 'error' ? body.reason : undefined}
    >
      Encrypted message
      {body?.status === 'error' ? <span className="visually-hidden"> ({body.reason})</span> : null}
    </p>
  );
}

export function MessageRow({
  message,
  body,
  mine,
  senderName,
  ticks,
  actions,
}: {
  message: MessageView;
  body: Body | undefined;
  mine: boolean;
  /** Shown above others' messages in groups. */
  senderName: string | null;
  ticks: Ticks;
  /** Controls beside the bubble (the options button). */
  actions?: ReactNode;
}) {
  return (
    <div className={`message${mine ? ' message--mine' : ''}`}>
      {actions ? <div className="message__actions">{actions}</div> : null}
      <div className="bubble">
        {senderName ? <p className="bubble__sender">{senderName}</p> : null}
        <BodyText body={body} deleted={message.deleted} />
        <p className="bubble__meta">
          <time dateTime={message.created_at}>{formatTime(message.created_at)}</time>
          {mine ? <TicksMark ticks={ticks} /> : null}
        </p>
      </div>
    </div>
  );
}

export function PendingRow({
  pending,
  onRetry,
}: {
  pending: PendingMessage;
  onRetry: (clientMsgId: string) => void;
}) {
  const failed = pending.status === 'failed';
  return (
    <div className="message message--mine">
      <div className={`bubble${failed ? ' bubble--failed' : ''}`}>
        <p className="bubble__text">{pending.text}</p>
        <p className="bubble__meta">
          <time dateTime={pending.created_at}>{formatTime(pending.created_at)}</time>
          <TicksMark ticks={failed ? 'failed' : 'sending'} />
        </p>
        {failed ? (
          <p className="bubble__error" role="alert">
            Not sent: {pending.error}{' '}
            <button
              type="button"
              className="button button--small"
              onClick={() => onRetry(pending.client_msg_id)}
            >
              Retry
            </button>
          </p>
        ) : null}
      </div>
    </div>
  );
}
