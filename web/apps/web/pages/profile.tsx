import { useState, type FormEvent } from 'react';
import { useAppState, useController } from '../components/AppProvider';
import { UserAvatar } from '../components/Avatar';
import { PanelPage } from '../components/PanelPage';
import { AVATAR_PRIVACY_NOTE, PicturePicker } from '../components/PicturePicker';
import { Shell } from '../components/Shell';
import { useAsyncAction } from '../components/useAsyncAction';
import { NAME_MAX_CHARS, STATUS_MAX_CHARS } from '../lib/features/profile';
import { ErrorAlert } from '../components/ErrorAlert';

/** Your name, status and picture. */
export default function ProfilePage() {
  return (
    <Shell mode="detail">
      <PanelPage title="Profile" titleId="profile-title">
        <ProfileEditor />
      </PanelPage>
    </Shell>
  );
}

function ProfileEditor() {
  const state = useAppState();
  const me = state.auth.userId;
  const user = me ? state.users[me] : undefined;
  if (!me || !user) return <p className="empty">Loading your profile…</p>;
  return (
    <>
      <PictureSection userId={me} hasPicture={Boolean(user.avatar_media_id)} />
      <DetailsForm name={user.name} status={user.status} />
      {user.email ? (
        <p className="hint">
          Signed in as <strong>{user.email}</strong> (only you see your email address).
        </p>
      ) : null}
    </>
  );
}

function PictureSection({ userId, hasPicture }: { userId: string; hasPicture: boolean }) {
  const controller = useController();
  const { busy, error, run } = useAsyncAction();
  const [done, setDone] = useState<string | null>(null);
  // Remounting the input clears the file it shows once the picture is set.
  const [inputKey, setInputKey] = useState(0);

  async function pick(file: File | null) {
    if (!file || !controller) return;
    setDone(null);
    const ok = await run(() => controller.features.profile.setAvatar(file));
    if (ok) setDone('Picture updated.');
    setInputKey((k) => k + 1);
  }

  async function remove() {
    if (!controller) return;
    setDone(null);
    if (await run(() => controller.features.profile.removeAvatar())) setDone('Picture removed.');
  }

  return (
    <section className="card stack" aria-labelledby="picture-title">
      <h3 id="picture-title">Picture</h3>
      <div className="picture-field">
        <UserAvatar userId={userId} size="large" />
        <PicturePicker
          key={inputKey}
          id="profile-picture"
          label={hasPicture ? 'Choose a new picture' : 'Choose a picture'}
          onPick={(file) => void pick(file)}
          disabled={busy}
          describedBy="profile-picture-hint"
        />
      </div>
      <p className="hint" id="profile-picture-hint">
        {AVATAR_PRIVACY_NOTE} It is scaled down to 512 pixels and re-encoded, which also removes its
        metadata (such as where a photo was taken).
      </p>
      {hasPicture ? (
        <div>
          <button type="button" className="button" onClick={() => void remove()} disabled={busy}>
            Remove picture
          </button>
        </div>
      ) : null}
      <p className="hint" role="status" aria-live="polite">
        {busy ? 'Saving…' : done}
      </p>
      <ErrorAlert error={error} />
    </section>
  );
}

function DetailsForm({ name: savedName, status: savedStatus }: { name: string; status: string }) {
  const controller = useController();
  const [name, setName] = useState(savedName);
  const [status, setStatus] = useState(savedStatus);
  const { busy, error, run } = useAsyncAction();
  const [saved, setSaved] = useState(false);
  const changed = name.trim() !== savedName || status.trim() !== savedStatus;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!controller) return;
    setSaved(false);
    if (await run(() => controller.features.profile.save(name, status))) setSaved(true);
  }

  return (
    <form className="card stack" onSubmit={submit} aria-labelledby="details-title">
      <h3 id="details-title">Name and status</h3>
      <div className="field">
        <label htmlFor="profile-name">Display name</label>
        <input
          id="profile-name"
          value={name}
          onChange={(event) => setName(event.target.value)}
          required
          maxLength={NAME_MAX_CHARS * 2}
          autoComplete="name"
        />
      </div>
      <div className="field">
        <label htmlFor="profile-status">Status</label>
        <input
          id="profile-status"
          value={status}
          onChange={(event) => setStatus(event.target.value)}
          maxLength={STATUS_MAX_CHARS * 2}
          placeholder="Optional, e.g. “At work”"
          aria-describedby="profile-status-hint"
        />
        <p className="hint" id="profile-status-hint">
          Your name and status are visible to everyone with an account here.
        </p>
      </div>
      <ErrorAlert error={error} />
      <p className="hint" role="status" aria-live="polite">
        {saved && !changed ? 'Saved.' : ''}
      </p>
      <div>
        <button type="submit" className="button button--primary" disabled={busy || !changed}>
          {busy ? 'Saving…' : 'Save'}
        </button>
      </div>
    </form>
  );
}
