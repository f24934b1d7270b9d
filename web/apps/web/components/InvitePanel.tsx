import { useState } from 'react';
import { inviteLink } from '../lib/features/groups';
import { useAppState, useController } from './AppProvider';
import { CopyButton } from './CopyButton';
import { ConfirmDialog } from './Dialog';
import { useAsyncAction } from './useAsyncAction';
import { ErrorAlert } from './ErrorAlert';

/** A group's invite link (admins): create, copy, reset, revoke. */
export function InvitePanel({ chatId }: { chatId: string }) {
  const { invites } = useAppState();
  const controller = useController();
  const invite = invites[chatId];
  const { busy, error, run } = useAsyncAction();
  const [confirm, setConfirm] = useState<'reset' | 'revoke' | null>(null);
  const confirmAction = useAsyncAction();
  const [announcement, setAnnouncement] = useState('');
  const link =
    invite && typeof window !== 'undefined'
      ? inviteLink(window.location.origin, invite.invite_code)
      : null;

  const create = () =>
    run(async () => {
      await controller?.features.groups.createInvite(chatId);
      setAnnouncement('Invite link created.');
    });

  async function confirmed(kind: 'reset' | 'revoke') {
    const done = await confirmAction.run(async () => {
      if (kind === 'reset') await controller?.features.groups.createInvite(chatId);
      else await controller?.features.groups.revokeInvite(chatId);
    });
    if (done) {
      setConfirm(null);
      setAnnouncement(kind === 'reset' ? 'A new invite link was made.' : 'Invite links revoked.');
    }
  }

  return (
    <section className="card stack" aria-labelledby="invite-title">
      <h3 id="invite-title">Invite link</h3>
      <p className="hint">
        Anyone with the link can join after signing in, and sees messages from then on. A link works
        for 7 days; making a new one stops the old one.
      </p>
      {link && invite ? (
        <>
          <div className="field">
            <label htmlFor="invite-link">Link</label>
            <div className="inline-field">
              <input id="invite-link" value={link} readOnly onFocus={(e) => e.target.select()} />
              <CopyButton text={link} label="Copy link" fieldId="invite-link" />
            </div>
            <p className="hint">
              Works until{' '}
              <time dateTime={invite.expires_at}>
                {new Date(invite.expires_at).toLocaleString(undefined, {
                  dateStyle: 'medium',
                  timeStyle: 'short',
                })}
              </time>
              .
            </p>
          </div>
          <div className="row">
            <button type="button" className="button" onClick={() => setConfirm('reset')}>
              Reset link
            </button>
            <button
              type="button"
              className="button button--danger-outline"
              onClick={() => setConfirm('revoke')}
            >
              Revoke link
            </button>
          </div>
        </>
      ) : (
        <div className="row">
          <button
            type="button"
            className="button button--primary"
            onClick={() => void create()}
            disabled={busy}
          >
            {busy ? 'Creating…' : 'Create invite link'}
          </button>
          <button type="button" className="button" onClick={() => setConfirm('revoke')}>
            Revoke existing links
          </button>
        </div>
      )}
      <p className="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      <ErrorAlert error={error} />
      {confirm ? (
        <ConfirmDialog
          title={confirm === 'reset' ? 'Reset the invite link?' : 'Revoke invite links?'}
          message={
            <p>
              {confirm === 'reset'
                ? 'The current link stops working and a new one is made. People who already joined stay.'
                : 'Every invite link of this group stops working. People who already joined stay.'}
            </p>
          }
          choices={[
            {
              label: confirm === 'reset' ? 'Reset link' : 'Revoke',
              danger: true,
              onChoose: () => confirmed(confirm),
            },
          ]}
          onClose={() => {
            confirmAction.reset();
            setConfirm(null);
          }}
          busy={confirmAction.busy}
          error={confirmAction.error}
        />
      ) : null}
    </section>
  );
}
