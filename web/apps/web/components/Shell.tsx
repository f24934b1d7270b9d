import Link from 'next/link';
import { useState, type ReactNode } from 'react';
import { AccountNav, AppBanner } from './AccountNav';
import { useAppState, useAuthRedirect, useController } from './AppProvider';
import { ChatList } from './ChatList';
import { Splash } from './Splash';

const CONNECTION_TEXT = {
  idle: 'Offline',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  open: 'Online',
} as const;

/**
 * The signed-in frame: the chat list beside the page on wide screens; on narrow ones either
 * the list (`mode="list"`) or the page (`mode="detail"`).
 */
export function Shell({
  mode,
  activeChatId = null,
  children,
}: {
  mode: 'list' | 'detail';
  activeChatId?: string | null;
  children: ReactNode;
}) {
  const status = useAuthRedirect('signed_in');
  const state = useAppState();
  const controller = useController();
  const [leaving, setLeaving] = useState(false);
  if (status !== 'signed_in' || !controller) return <Splash />;

  async function logout() {
    setLeaving(true);
    try {
      await controller?.logout();
    } finally {
      setLeaving(false);
    }
  }

  return (
    <div className={`shell shell--${mode}`}>
      <aside className="sidebar" aria-label="Chats">
        <header className="bar">
          <h1 className="brand">Parley</h1>
          <span
            className={`connection connection--${state.connection}`}
            role="status"
            aria-live="polite"
          >
            {CONNECTION_TEXT[state.connection]}
          </span>
          <button
            type="button"
            className="button button--quiet"
            onClick={logout}
            disabled={leaving}
          >
            Log out
          </button>
        </header>
        <nav className="actions" aria-label="Start a conversation">
          <Link className="button" href="/new-chat">
            New chat
          </Link>
          <Link className="button" href="/new-group">
            New group
          </Link>
        </nav>
        <AccountNav />
        {mode === 'list' ? <AppBanner /> : null}
        <ChatList activeChatId={activeChatId} />
      </aside>
      <main className="main" id="main">
        {mode === 'detail' ? <AppBanner /> : null}
        {children}
      </main>
    </div>
  );
}
