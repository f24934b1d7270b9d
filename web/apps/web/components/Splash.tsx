import { useAppState, useController } from './AppProvider';

/** What shows while the stored session is checked (or when the server cannot be reached). */
export function Splash() {
  const { auth } = useAppState();
  const controller = useController();
  return (
    <main className="splash" id="main">
      <h1 className="brand">Parley</h1>
      {auth.error && auth.status === 'restoring' ? (
        <div role="alert" className="splash__error">
          <p>{auth.error}</p>
          <button type="button" className="button" onClick={() => void controller?.start()}>
            Try again
          </button>
        </div>
      ) : (
        <p aria-live="polite">Loading…</p>
      )}
    </main>
  );
}
