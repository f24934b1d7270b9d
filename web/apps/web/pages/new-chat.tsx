import Head from 'next/head';
import Link from 'next/link';
import { useRouter } from 'next/router';
import { useState } from 'react';
import { useController } from '../components/AppProvider';
import { Shell } from '../components/Shell';
import { UserSearch } from '../components/UserSearch';
import { ErrorAlert } from '../components/ErrorAlert';

/** Find someone and open the direct chat with them. */
export default function NewChatPage() {
  const controller = useController();
  const router = useRouter();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function start(userId: string) {
    if (!controller) return;
    setBusy(userId);
    setError(null);
    try {
      const chatId = await controller.startDirectChat(userId);
      await router.push({ pathname: '/chat', query: { id: chatId } });
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : 'Could not start the chat.');
      setBusy(null);
    }
  }

  return (
    <Shell mode="detail">
      <Head>
        <title>New chat · Parley</title>
      </Head>
      <section className="panel" aria-labelledby="new-chat-title">
        <header className="bar">
          <Link href="/chats" className="back" aria-label="Back to chats">
            ←
          </Link>
          <h2 id="new-chat-title">New chat</h2>
        </header>
        <div className="panel__body">
          <ErrorAlert error={error} />
          <UserSearch
            label="Search people"
            action={(user) => (
              <button
                type="button"
                className="button button--small"
                onClick={() => void start(user.id)}
                disabled={busy !== null}
                aria-label={`Message ${user.name}`}
              >
                {busy === user.id ? 'Opening…' : 'Message'}
              </button>
            )}
          />
          <p className="hint">
            Or <Link href="/new-group">create a group</Link>.
          </p>
        </div>
      </section>
    </Shell>
  );
}
