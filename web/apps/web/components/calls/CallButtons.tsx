import { useRouter } from 'next/router';
import type { CallKind } from '../../lib/calls/state';
import { useAppState, useController } from '../AppProvider';

/**
 * A chat's call buttons: voice and video, or "Join call" when the chat has a call under way
 * (starting a call in such a chat joins it).
 */
export function CallButtons({ chatId, title }: { chatId: string; title: string }) {
  const state = useAppState();
  const controller = useController();
  const router = useRouter();
  const live = state.calls.live[chatId];
  const current = state.calls.current;
  const busy = !!current && current.phase !== 'ended';

  async function start(kind: CallKind) {
    void controller?.calls.start(chatId, kind);
    await router.push('/call');
  }

  if (live && !(busy && current.chatId === chatId)) {
    return (
      <button
        type="button"
        className="button button--primary chat__call"
        disabled={busy}
        onClick={() => void start(live.kind)}
      >
        Join call
      </button>
    );
  }
  return (
    <div className="chat__calls">
      <button
        type="button"
        className="icon-button"
        disabled={busy}
        aria-label={`Voice call with ${title}`}
        title="Voice call"
        onClick={() => void start('audio')}
      >
        <svg viewBox="0 0 24 24" aria-hidden="true">
          <path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1A17 17 0 0 1 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.3.2 2.5.6 3.6.1.3 0 .7-.2 1z" />
        </svg>
      </button>
      <button
        type="button"
        className="icon-button"
        disabled={busy}
        aria-label={`Video call with ${title}`}
        title="Video call"
        onClick={() => void start('video')}
      >
        <svg viewBox="0 0 24 24" aria-hidden="true">
          <path d="M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11z" />
        </svg>
      </button>
    </div>
  );
}
