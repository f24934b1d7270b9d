import { useState } from 'react';
import type { PendingKeyChange } from '../lib/crypto';
import type { E2eeStatus } from '../lib/store';

/** The first 4 bytes of a key, enough to tell keys apart on screen. */
function fingerprint(key: string): string {
  return key.slice(0, 11);
}

function KeyChangeWarning({
  change,
  name,
  isMe,
  onAccept,
  onSafetyNumber,
}: {
  change: PendingKeyChange;
  name: string;
  isMe: boolean;
  onAccept: (change: PendingKeyChange) => Promise<void>;
  onSafetyNumber: (userId: string) => Promise<string>;
}) {
  const [number, setNumber] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const who = isMe ? 'One of your other devices' : `${name}’s device`;
  return (
    <div className="notice notice--warning" role="alert">
      <p>
        <strong>
          {who} ({change.display_name ?? change.device_id.slice(0, 8)}) presented new identity keys.
        </strong>{' '}
        Nothing is encrypted to it and nothing from it is accepted until you check with{' '}
        {isMe ? 'that device' : name} that this is expected and accept the new keys.
      </p>
      <p className="notice__detail">
        Trusted key <code>{fingerprint(change.trusted_ed25519)}…</code>, presented now{' '}
        <code>{fingerprint(change.presented_ed25519)}…</code>
      </p>
      {number ? (
        <p className="notice__detail">
          Safety number (keys trusted so far): <code className="safety-number">{number}</code>
        </p>
      ) : null}
      {error ? <p className="error">{error}</p> : null}
      <p className="notice__actions">
        {!number && !isMe ? (
          <button
            type="button"
            className="button button--small"
            onClick={() =>
              onSafetyNumber(change.user_id).then(setNumber, (e: unknown) => setError(String(e)))
            }
          >
            Show safety number
          </button>
        ) : null}
        {confirming ? (
          <>
            <button
              type="button"
              className="button button--small button--danger"
              onClick={() =>
                onAccept(change).catch((e: unknown) =>
                  setError(e instanceof Error ? e.message : String(e)),
                )
              }
            >
              I checked: trust the new keys
            </button>
            <button
              type="button"
              className="button button--small button--quiet"
              onClick={() => setConfirming(false)}
            >
              Cancel
            </button>
          </>
        ) : (
          <button
            type="button"
            className="button button--small"
            onClick={() => setConfirming(true)}
          >
            Accept new keys…
          </button>
        )}
      </p>
    </div>
  );
}

/**
 * What the chat screen says about encryption: the device's state when it is not ready,
 * identity-key changes of the chat's members (never accepted silently), and warnings from
 * sending (devices that could not be given the key).
 */
export function EncryptionNotices({
  status,
  reason,
  keyChanges,
  notices,
  me,
  nameOf,
  onAccept,
  onSafetyNumber,
  onDismiss,
}: {
  status: E2eeStatus;
  reason: string | null;
  keyChanges: PendingKeyChange[];
  notices: string[];
  me: string | null;
  nameOf: (userId: string) => string;
  onAccept: (change: PendingKeyChange) => Promise<void>;
  onSafetyNumber: (userId: string) => Promise<string>;
  onDismiss: () => void;
}) {
  return (
    <>
      {status === 'unavailable' ? (
        <p className="notice notice--warning" role="alert">
          End-to-end encryption is not available on this device ({reason}): messages can’t be read
          or sent here.
        </p>
      ) : null}
      {status === 'waiting' ? (
        <p className="notice" role="status">
          {reason}
        </p>
      ) : null}
      {keyChanges.map((change) => (
        <KeyChangeWarning
          key={`${change.user_id}/${change.device_id}/${change.presented_ed25519}`}
          change={change}
          name={nameOf(change.user_id)}
          isMe={change.user_id === me}
          onAccept={onAccept}
          onSafetyNumber={onSafetyNumber}
        />
      ))}
      {notices.length > 0 ? (
        <div className="notice" role="status">
          {notices.map((text) => (
            <p key={text}>{text}</p>
          ))}
          <p className="notice__actions">
            <button
              type="button"
              className="button button--small button--quiet"
              onClick={onDismiss}
            >
              Dismiss
            </button>
          </p>
        </div>
      ) : null}
    </>
  );
}
