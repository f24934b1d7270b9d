import type { MemberView } from '@parley/sdk';
import { useMemo, useState } from 'react';
import { amAdmin, isAdmin, sortedMembers } from '../lib/features/groups';
import { useAppState, useController } from './AppProvider';
import { UserAvatar } from './Avatar';
import { ConfirmDialog } from './Dialog';
import { useAsyncAction } from './useAsyncAction';
import { UserSearch } from './UserSearch';
import { ErrorAlert } from './ErrorAlert';

/** The member list with admin badges; admins remove members and change their roles here. */
export function GroupMembers({ chatId }: { chatId: string }) {
  const state = useAppState();
  const controller = useController();
  const members = useMemo(() => sortedMembers(state, chatId), [state, chatId]);
  const admin = amAdmin(state, chatId);
  const me = state.auth.userId;
  const [removing, setRemoving] = useState<MemberView | null>(null);
  const removal = useAsyncAction();
  const roleChange = useAsyncAction();
  const [changingRole, setChangingRole] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState('');
  const name = (id: string) => state.users[id]?.name ?? 'Someone';

  async function remove(member: MemberView) {
    const done = await removal.run(async () => {
      await controller?.features.groups.removeMember(chatId, member.user_id);
    });
    if (done) {
      setRemoving(null);
      setAnnouncement(`${name(member.user_id)} was removed from the group.`);
    }
  }

  async function toggleAdmin(member: MemberView) {
    const role = isAdmin(member) ? 'member' : 'admin';
    setChangingRole(member.user_id);
    const done = await roleChange.run(async () => {
      await controller?.features.groups.setRole(chatId, member.user_id, role);
    });
    setChangingRole(null);
    if (done) {
      setAnnouncement(
        role === 'admin'
          ? `${name(member.user_id)} is now an admin.`
          : `${name(member.user_id)} is no longer an admin.`,
      );
    }
  }

  return (
    <section className="card stack" aria-labelledby="members-title">
      <h3 id="members-title">Members ({members.length})</h3>
      <ul className="people" aria-labelledby="members-title">
        {members.map((member) => {
          const isMe = member.user_id === me;
          const user = state.users[member.user_id];
          return (
            <li key={member.user_id} className="people__item">
              <UserAvatar userId={member.user_id} />
              <span className="people__text">
                <span className="people__name">
                  {isMe ? `${name(member.user_id)} (you)` : name(member.user_id)}
                  {isAdmin(member) ? <span className="tag">Admin</span> : null}
                </span>
                {user?.status ? <span className="people__status">{user.status}</span> : null}
              </span>
              {admin && !isMe ? (
                <span className="people__actions">
                  <button
                    type="button"
                    className="button button--small"
                    disabled={roleChange.busy}
                    onClick={() => void toggleAdmin(member)}
                  >
                    {changingRole === member.user_id
                      ? 'Saving…'
                      : isAdmin(member)
                        ? 'Dismiss as admin'
                        : 'Make admin'}
                    <span className="visually-hidden">: {name(member.user_id)}</span>
                  </button>
                  <button
                    type="button"
                    className="button button--small button--danger-outline"
                    onClick={() => {
                      removal.reset();
                      setRemoving(member);
                    }}
                    aria-label={`Remove ${name(member.user_id)} from the group`}
                  >
                    Remove
                  </button>
                </span>
              ) : null}
            </li>
          );
        })}
      </ul>
      {!admin ? (
        <p className="hint">
          Only admins can add or remove members, make admins and manage the invite link.
        </p>
      ) : null}
      <ErrorAlert error={roleChange.error} />
      <p className="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      {removing ? (
        <ConfirmDialog
          title={`Remove ${name(removing.user_id)}?`}
          message={
            <p>
              They leave the group and get no new messages. They cannot rejoin with an invite link
              until an admin adds them again.
            </p>
          }
          choices={[{ label: 'Remove', danger: true, onChoose: () => remove(removing) }]}
          onClose={() => setRemoving(null)}
          busy={removal.busy}
          error={removal.error}
        />
      ) : null}
    </section>
  );
}

/** Search people and add them (admins). */
export function AddMembers({ chatId }: { chatId: string }) {
  const state = useAppState();
  const controller = useController();
  const { busy, error, run } = useAsyncAction();
  const [adding, setAdding] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState('');
  const members = new Set(state.details[chatId]?.members.map((m) => m.user_id));

  async function add(userId: string, userName: string) {
    setAdding(userId);
    const done = await run(async () => {
      await controller?.features.groups.addMembers(chatId, [userId]);
    });
    setAdding(null);
    if (done) setAnnouncement(`${userName} was added.`);
  }

  return (
    <section className="card stack" aria-labelledby="add-title">
      <h3 id="add-title">Add members</h3>
      <p className="hint">New members see the messages sent after they join.</p>
      <UserSearch
        label="Search people to add"
        action={(user) =>
          members.has(user.id) ? (
            <span className="hint">Member</span>
          ) : (
            <button
              type="button"
              className="button button--small"
              disabled={busy}
              onClick={() => void add(user.id, user.name)}
              aria-label={`Add ${user.name} to the group`}
            >
              {adding === user.id ? 'Adding…' : 'Add'}
            </button>
          )
        }
      />
      <p className="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      <ErrorAlert error={error} />
    </section>
  );
}
