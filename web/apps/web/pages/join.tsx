import Link from 'next/link';
import { useRouter } from 'next/router';
import { useEffect, useRef, useState } from 'react';
import { useAppState, useController } from '../components/AppProvider';
import { PanelPage } from '../components/PanelPage';
import { Shell } from '../components/Shell';
import { errorMessage } from '../lib/features/apiError';
import { parseInviteCode } from '../lib/features/groups';

/**
 * `/join?code=…`, the page an invite link opens: signed out, it goes to the login form and
 * comes back here afterwards; signed in, it joins and opens the group.
 */
export default function JoinPage() {
  const router = useRouter();
  const code =
    router.isReady && typeof router.query.code === 'string'
      ? parseInviteCode(router.query.code)
      : undefined;
  return (
    <Shell mode="detail">
      <PanelPage title="Join a group" titleId="join-title">
        {code === undefined ? null : code === null ? (
          <p className="error" role="alert">
            This invite link is incomplete: ask for the whole link again.
          </p>
        ) : (
          <Joining code={code} />
        )}
      </PanelPage>
    </Shell>
  );
}

function Joining({ code }: { code: string }) {
  const controller = useController();
  const router = useRouter();
  const { auth } = useAppState();
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const started = useRef(-1);

  useEffect(() => {
    if (!controller || auth.status !== 'signed_in' || started.current === attempt) return;
    started.current = attempt;
    controller.features.groups
      .join(code)
      .then((chatId) => router.replace({ pathname: '/chat', query: { id: chatId } }))
      .catch((failure: unknown) => setError(errorMessage(failure)));
  }, [controller, auth.status, code, attempt, router]);

  if (error) {
    return (
      <div className="stack">
        <p className="error" role="alert">
          {error}
        </p>
        <div className="row">
          <button
            type="button"
            className="button"
            onClick={() => {
              setError(null);
              setAttempt((n) => n + 1);
            }}
          >
            Try again
          </button>
          <Link className="button" href="/chats">
            Go to your chats
          </Link>
        </div>
      </div>
    );
  }
  return (
    <p className="empty" role="status">
      Joining the group…
    </p>
  );
}
