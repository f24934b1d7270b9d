import { useRouter } from 'next/router';
import {
  createContext,
  useContext,
  useEffect,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from 'react';
import { createBrowserController } from '../lib/browser';
import type { AppController } from '../lib/controller';
import { returnQuery, safeReturnPath } from '../lib/returnTo';
import { initialState, type AppState, type AuthStatus } from '../lib/store';

const ControllerContext = createContext<AppController | null>(null);

/** Creates the controller in the browser only (pages are pre-rendered without one). */
export function AppProvider({ children }: { children: ReactNode }) {
  // Pre-rendering has no window and no controller; the first browser render shows the same
  // splash (auth is `restoring` until `start` ran), so hydration matches.
  const [controller] = useState<AppController | null>(() =>
    typeof window === 'undefined' ? null : createBrowserController(),
  );
  useEffect(() => {
    if (!controller) return;
    const created = controller;
    void created.start();
    const wake = () => created.wake();
    const onVisibility = () => {
      if (document.visibilityState === 'visible') created.wake();
    };
    // Closing the tab leaves a call at once (rather than after the SFU's rejoin grace).
    const onPageHide = () => created.calls.pageHidden();
    window.addEventListener('online', wake);
    window.addEventListener('pagehide', onPageHide);
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      window.removeEventListener('online', wake);
      window.removeEventListener('pagehide', onPageHide);
      document.removeEventListener('visibilitychange', onVisibility);
      created.dispose();
    };
  }, [controller]);
  return <ControllerContext.Provider value={controller}>{children}</ControllerContext.Provider>;
}

export function useController(): AppController | null {
  return useContext(ControllerContext);
}

const noSubscription = () => () => undefined;
const initial = () => initialState;

/** The whole UI state; re-renders on every change (derive with `useMemo`). */
export function useAppState(): AppState {
  const controller = useController();
  return useSyncExternalStore(
    controller ? controller.store.subscribe : noSubscription,
    controller ? controller.store.getState : initial,
    initial,
  );
}

/**
 * Sends the visitor where they belong: pages for signed-in users go to the login form when
 * there is no session, the login and register forms go to the chats when there is one.
 * Returns the auth status (`restoring` while the stored session is being checked).
 */
export function useAuthRedirect(needs: 'signed_in' | 'signed_out'): AuthStatus {
  const { auth } = useAppState();
  const router = useRouter();
  useEffect(() => {
    if (auth.status === 'restoring') return;
    // An invite link opened signed out is where signing in leads back to (other pages are not:
    // after a logout, the next account should not land on the previous one's chat).
    if (needs === 'signed_in' && auth.status === 'signed_out')
      void router.replace({
        pathname: '/login',
        query: router.pathname === '/join' ? returnQuery(router.asPath) : {},
      });
    if (needs === 'signed_out' && auth.status === 'signed_in')
      void router.replace(safeReturnPath(router.query.next) ?? '/chats');
  }, [auth.status, needs, router]);
  return auth.status;
}
