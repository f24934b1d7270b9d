import type { UserView } from '@parley/sdk';
import Head from 'next/head';
import Link from 'next/link';
import { useRouter } from 'next/router';
import { useState, type FormEvent } from 'react';
import { useController } from '../components/AppProvider';
import { Shell } from '../components/Shell';
import { UserSearch } from '../components/UserSearch';
import { ErrorAlert } from '../components/ErrorAlert';

/** Name a group, pick its first members, create it. */
export default function NewGroupPage() {
  const controller = useController();
  const router = useRouter();
  const [name, setName] = useState('');
  const [members, setMembers] = useState<UserView[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const chosen = new Set(members.map((m) => m.id));
  const toggle = (user: UserView) =>
    setMembers((current) =>
      current.some((m) => m.id === user.id)
        ? current.filter((m) => m.id !== user.id)
        : [...current, user],
    );

  async function create(event: FormEvent) {
    event.preventDefault();
    if (!controller || !name.trim()) return;
    setBusy(true);
    setError(null);
    try {
      const chatId = await controller.createGroup(
        name,
        members.map((m) => m.id),
      );
      await router.push({ pathname: '/chat', query: { id: chatId } });
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : 'Could not create the group.');
      setBusy(false);
    }
  }

  return (
    <Shell mode="detail">
      <Head>
        <title>New group · Parley</title>
      </Head>
      <section className="panel" aria-labelledby="new-group-title">
        <header className="bar">
          <Link href="/chats" className="back" aria-label="Back to chats">
            ←
          </Link>
          <h2 id="new-group-title">New group</h2>
        </header>
        <form className="panel__body form" onSubmit={create}>
          <div className="field">
            <label htmlFor="group-name">Group name</label>
            <input
              id="group-name"
              value={name}
              onChange={(event) => setName(event.target.value)}
              required
              maxLength={64}
            />
          </div>
          <fieldset className="members">
            <legend>Members ({members.length})</legend>
            {members.length === 0 ? <p className="hint">Nobody yet: search below.</p> : null}
            <ul className="chips">
              {members.map((member) => (
                <li key={member.id} className="chip">
                  {member.name}
                  <button
                    type="button"
                    className="chip__remove"
                    onClick={() => toggle(member)}
                    aria-label={`Remove ${member.name}`}
                  >
                    ×
                  </button>
                </li>
              ))}
            </ul>
          </fieldset>
          <UserSearch
            label="Add people"
            action={(user) => (
              <button
                type="button"
                className="button button--small"
                aria-pressed={chosen.has(user.id)}
                onClick={() => toggle(user)}
                aria-label={`Add ${user.name}`}
              >
                {chosen.has(user.id) ? 'Added' : 'Add'}
              </button>
            )}
          />
          <ErrorAlert error={error} />
          <button type="submit" className="button button--primary" disabled={busy || !name.trim()}>
            {busy ? 'Creating…' : 'Create group'}
          </button>
        </form>
      </section>
    </Shell>
  );
}
