import type { MessageView } from '@parley/sdk';
import type { ReactNode } from 'react';
import type { AttachmentInfo } from '../lib/crypto';
import { formatBytes, formatTime } from '../lib/format';
import type { Body, MediaState, PendingMessage, Ticks } from '../lib/store';
import { Attachment } from './Attachment';

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

function BodyText({
  body,
  deleted,
  media,
  onLoadMedia,
}: {
  body: Body | undefined;
  deleted: boolean;
  media: MediaState | undefined;
  onLoadMedia: (info: AttachmentInfo) => void;
}) {
  if (deleted || body?.status === 'deleted') {
    return <p className="bubble__text bubble__text--muted">Message deleted</p>;
  }
  if (body?.status === 'ok') {
    return (
      <>
        {body.file ? (
          <Attachment
            info={body.file}
            thumbnail={body.thumbnail}
            media={media}
            onLoad={onLoadMedia}
          />
        ) : null}
        {body.text ? <p className="bubble__text">{body.text}</p> : null}
      </>
    );
  }
  if (body?.status === 'waiting') {
    return (
      <p className="bubble__text bubble__text--muted" role="status">
        Waiting for the key to this message…
      </p>
    );
  }
  if (body?.status === 'error') {
    return (
      <p className="bubble__text bubble__text--muted bubble__text--undecryptable">
        Cannot decrypt this message: {body.reason}
      </p>
    );
  }
  return <p className="bubble__text bubble__text--muted">Decrypting…</p>;
}

export function MessageRow({
  message,
  body,
  mine,
  senderName,
  ticks,
  media,
  onLoadMedia,
  actions,
}: {
  message: MessageView;
  body: Body | undefined;
  mine: boolean;
  /** Shown above others' messages in groups. */
  senderName: string | null;
  ticks: Ticks;
  /** The decrypted attachment, when the message carries one. */
  media: MediaState | undefined;
  onLoadMedia: (info: AttachmentInfo) => void;
  /** Controls beside the bubble (the options button). */
  actions?: ReactNode;
}) {
  return (
    <div className={`message${mine ? ' message--mine' : ''}`} data-message-id={message.id}>
      {actions ? <div className="message__actions">{actions}</div> : null}
      <div className="bubble">
        {senderName ? <p className="bubble__sender">{senderName}</p> : null}
        <BodyText body={body} deleted={message.deleted} media={media} onLoadMedia={onLoadMedia} />
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
  const file = pending.file;
  return (
    <div className="message message--mine">
      <div className={`bubble${failed ? ' bubble--failed' : ''}`}>
        {file ? (
          <div className="attachment attachment__placeholder" role="status">
            <span>
              {file.name} · {formatBytes(file.size)}
              {pending.status === 'uploading'
                ? ` · encrypting and uploading ${Math.floor((file.sent / Math.max(file.size, 1)) * 100)} %`
                : ''}
            </span>
            <progress value={file.sent} max={Math.max(file.size, 1)} />
          </div>
        ) : null}
        {pending.text ? <p className="bubble__text">{pending.text}</p> : null}
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
