import Link from 'next/link';
import { useState, type FormEvent } from 'react';
import { useAuthRedirect, useController } from './AppProvider';
import { Splash } from './Splash';

/** The login and register forms (one component, two modes). */
export function AuthForm({ mode }: { mode: 'login' | 'register' }) {
  const status = useAuthRedirect('signed_out');
  const controller = useController();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const register = mode === 'register';

  if (status !== 'signed_out' || !controller) return <Splash />;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const email = String(form.get('email') ?? '').trim();
    const password = String(form.get('password') ?? '');
    const name = String(form.get('name') ?? '').trim();
    setBusy(true);
    setError(null);
    try {
      if (register) await controller?.register(name, email, password);
      else await controller?.login(email, password);
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : 'Something went wrong.');
      setBusy(false);
    }
  }

  return (
    <main className="auth" id="main">
      <h1 className="brand">Parley</h1>
      <form className="card form" onSubmit={submit} aria-labelledby="auth-title">
        <h2 id="auth-title">{register ? 'Create an account' : 'Log in'}</h2>
        {register ? (
          <div className="field">
            <label htmlFor="name">Name</label>
            <input id="name" name="name" autoComplete="name" required maxLength={64} />
          </div>
        ) : null}
        <div className="field">
          <label htmlFor="email">Email</label>
          <input
            id="email"
            name="email"
            type="email"
            autoComplete="email"
            required
            maxLength={254}
          />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            name="password"
            type="password"
            autoComplete={register ? 'new-password' : 'current-password'}
            required
            minLength={register ? 8 : undefined}
            aria-describedby={register ? 'password-hint' : undefined}
          />
          {register ? (
            <p className="hint" id="password-hint">
              At least 8 characters.
            </p>
          ) : null}
        </div>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" className="button button--primary" disabled={busy}>
          {busy ? 'Please wait…' : register ? 'Create account' : 'Log in'}
        </button>
        <p className="switch">
          {register ? (
            <>
              Have an account? <Link href="/login">Log in</Link>
            </>
          ) : (
            <>
              New here? <Link href="/register">Create an account</Link>
            </>
          )}
        </p>
      </form>
    </main>
  );
}
