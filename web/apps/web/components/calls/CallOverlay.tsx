import Link from 'next/link';
import { useRouter } from 'next/router';
import { useEffect } from 'react';
import { RING_FOR_MS } from '../../lib/calls/calls';
import { startRingtone } from '../../lib/calls/ringtone';
import type { IncomingCall } from '../../lib/calls/state';
import { selectChatTitle } from '../../lib/store';
import { useAppState, useController } from '../AppProvider';
import { Avatar } from '../Avatar';

/**
 * What every page shows about calls: a call ringing for you (answer or decline, with a ring
 * tone), and while you are in a call on another page, a bar that leads back to it.
 */
export function CallOverlay() {
  const state = useAppState();
  const router = useRouter();
  const current = state.calls.current;
  const inCall = !!current && current.phase !== 'ended';
  const incoming = inCall ? undefined : state.calls.incoming[0];
  return (
    <>
      {incoming ? <IncomingCallAlert key={incoming.callId} incoming={incoming} /> : null}
      {inCall && router.pathname !== '/call' ? (
        <Link href="/call" className="call-return">
          {current.phase === 'reconnecting' ? 'Reconnecting… ' : ''}
          Return to the call with {selectChatTitle(state, current.chatId)}
        </Link>
      ) : null}
    </>
  );
}

function IncomingCallAlert({ incoming }: { incoming: IncomingCall }) {
  const state = useAppState();
  const controller = useController();
  const router = useRouter();
  const chat = state.chats[incoming.chatId] ?? state.details[incoming.chatId];
  const isGroup = chat?.type === 'group';
  const caller = state.users[incoming.initiatorId];
  const callerName = caller?.name ?? 'Someone';
  const what = incoming.kind === 'video' ? 'Video call' : 'Voice call';
  const where = isGroup ? ` in ${selectChatTitle(state, incoming.chatId)}` : '';

  useEffect(() => {
    void controller?.ensureUsers([incoming.initiatorId]).catch(() => undefined);
    const stopRingtone = startRingtone();
    const timer = window.setTimeout(
      () => controller?.calls.stopRinging(incoming.callId),
      RING_FOR_MS,
    );
    return () => {
      window.clearTimeout(timer);
      stopRingtone();
    };
  }, [controller, incoming.initiatorId, incoming.callId]);

  async function accept() {
    void controller?.calls.accept(incoming);
    await router.push('/call');
  }

  return (
    <section
      className="incoming"
      role="alertdialog"
      aria-labelledby="incoming-title"
      aria-describedby="incoming-what"
    >
      <Avatar name={callerName} mediaId={caller?.avatar_media_id ?? null} size="large" />
      <div className="incoming__text">
        <h2 id="incoming-title">{callerName}</h2>
        <p id="incoming-what">
          {what}
          {where}
        </p>
      </div>
      <div className="incoming__actions">
        <button
          type="button"
          className="call-button call-button--end"
          onClick={() => void controller?.calls.reject(incoming.callId)}
        >
          Decline
        </button>
        <button type="button" className="call-button call-button--answer" onClick={accept}>
          Accept
        </button>
      </div>
    </section>
  );
}
