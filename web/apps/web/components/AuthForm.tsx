import Link from 'next/link';
import { useRouter } from 'next/router';
import { useState, type FormEvent } from 'react';
import { safeReturnPath } from '../lib/returnTo';
import { useAuthRedirect, useController } from './AppProvider';
import { AVATAR_PRIVACY_NOTE, PicturePicker, useFilePreview } from './PicturePicker';
import { Splash } from './Splash';
import { ErrorAlert } from './ErrorAlert';

/** The login and register forms (one component, two modes). */
export function AuthForm({ mode }: { mode: 'login' | 'register' }) {
  const status = useAuthRedirect('signed_out');
  const controller = useController();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const register = mode === 'register';
  const router = useRouter();
  const next = safeReturnPath(router.query.next);
  const nextQuery = next ? { next } : {};
  const [picture, setPicture] = useState<File | null>(null);
  const [preview, showPreview] = useFilePreview();

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
      if (register) {
        await controller?.register(name, email, password);
        // The api takes no picture at registration (uploading needs the account).
        if (picture) void controller?.features.profile.setAvatarAfterSignUp(picture);
      } else await controller?.login(email, password);
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
        {next?.startsWith('/join') ? (
          <p className="hint">
            {register ? 'Create an account' : 'Log in'} to join the group you were invited to.
          </p>
        ) : null}
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
        {register ? (
          <div className="picture-field">
            {preview ? (
              <span className="avatar avatar--large" aria-hidden="true">
                {/* A local preview (blob: URL): next/image has nothing to optimise here. */}
                {/* eslint-disable-next-line @next/next/no-img-element */}
                <img className="avatar__img" src={preview} alt="" />
              </span>
            ) : null}
            <PicturePicker
              id="picture"
              label="Profile picture (optional)"
              onPick={(file) => {
                setPicture(file);
                showPreview(file);
              }}
              disabled={busy}
              describedBy="picture-hint"
            />
            <p className="hint" id="picture-hint">
              {AVATAR_PRIVACY_NOTE}
            </p>
          </div>
        ) : null}
        <ErrorAlert error={error} />
        <button type="submit" className="button button--primary" disabled={busy}>
          {busy ? 'Please wait…' : register ? 'Create account' : 'Log in'}
        </button>
        <p className="switch">
          {register ? (
            <>
              Have an account? <Link href={{ pathname: '/login', query: nextQuery }}>Log in</Link>
            </>
          ) : (
            <>
              New here?{' '}
              <Link href={{ pathname: '/register', query: nextQuery }}>Create an account</Link>
            </>
          )}
        </p>
      </form>
    </main>
  );
}
