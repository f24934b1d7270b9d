import { useRouter } from 'next/router';
import { useEffect, useState } from 'react';
import { useAppState, useController } from '../components/AppProvider';
import { UserAvatar } from '../components/Avatar';
import { CopyButton } from '../components/CopyButton';
import { PanelPage } from '../components/PanelPage';
import { Shell } from '../components/Shell';
import { errorMessage } from '../lib/features/apiError';
import { directPeer, type AppState } from '../lib/store';

/** `/safety?chat=…`: the safety number with the other person of a direct chat. */
export default function SafetyPage() {
  const router = useRouter();
  const chatId = router.isReady && typeof router.query.chat === 'string' ? router.query.chat : null;
  return (
    <Shell mode="detail" activeChatId={chatId}>
      {chatId ? (
        <SafetyNumber key={chatId} chatId={chatId} />
      ) : (
        <p className="empty">No chat chosen.</p>
      )}
    </Shell>
  );
}

type Result =
  | { status: 'loading' }
  | { status: 'ready'; groups: string[] }
  | { status: 'error'; error: string };

function SafetyNumber({ chatId }: { chatId: string }) {
  const state = useAppState();
  const controller = useController();
  const detail = state.details[chatId];
  const peer = directPeer(state, chatId);
  const name = (peer && state.users[peer]?.name) || 'them';
  const [result, setResult] = useState<Result>({ status: 'loading' });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    controller?.ensureDetail(chatId);
  }, [controller, chatId]);

  useEffect(() => {
    if (!controller || !peer) return;
    let current = true;
    controller.features.devices
      .safetyNumber(peer)
      .then((groups) => current && setResult({ status: 'ready', groups }))
      .catch(
        (error: unknown) => current && setResult({ status: 'error', error: errorMessage(error) }),
      );
    return () => {
      current = false;
    };
  }, [controller, peer, attempt]);

  const back = {
    href: { pathname: '/chat-info', query: { id: chatId } },
    label: 'Back to contact info',
  };
  if (detail && detail.type !== 'direct') {
    return (
      <PanelPage title="Safety number" titleId="safety-title" back={back}>
        <p className="empty">Safety numbers are compared in direct chats, one person at a time.</p>
      </PanelPage>
    );
  }
  return (
    <PanelPage title="Safety number" titleId="safety-title" back={back}>
      <div className="identity">
        <UserAvatar userId={peer} size="large" />
        <p className="identity__name">You and {name}</p>
      </div>
      <p>
        Compare these digits with the ones {name} sees, in person or on a call you trust. If they
        match, your messages reach {name}’s devices and nobody else’s. They change when either of
        you adds or removes a device.
      </p>
      {result.status === 'loading' ? <p className="empty">Working out the safety number…</p> : null}
      {result.status === 'error' ? (
        <div className="stack">
          <p className="error" role="alert">
            {describe(result.error, state.e2ee)}
          </p>
          {state.e2ee.status === 'unavailable' ? null : (
            <div>
              <button
                type="button"
                className="button"
                onClick={() => {
                  setResult({ status: 'loading' });
                  setAttempt((n) => n + 1);
                }}
              >
                Try again
              </button>
            </div>
          )}
        </div>
      ) : null}
      {result.status === 'ready' ? (
        <>
          <ol
            className="safety-grid"
            aria-label={`Safety number with ${name}, 12 groups of 5 digits`}
          >
            {result.groups.map((group, index) => (
              <li key={index} className="safety-grid__group">
                {group}
              </li>
            ))}
          </ol>
          <div>
            <CopyButton text={result.groups.join('')} label="Copy digits" />
          </div>
        </>
      ) : null}
    </PanelPage>
  );
}

/** The error, or why encryption is not available on this device when that is the cause. */
function describe(error: string, e2ee: AppState['e2ee']): string {
  return e2ee.status === 'unavailable'
    ? `Safety numbers come from end-to-end encryption on this device, which is not available: ${e2ee.reason ?? error}`
    : error;
}
