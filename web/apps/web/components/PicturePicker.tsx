import { useCallback, useEffect, useState } from 'react';
import { AVATAR_INPUT_TYPES, validateAvatarFile } from '../lib/features/profile';

/** What the profile picture copy says wherever one is chosen. */
export const AVATAR_PRIVACY_NOTE =
  'Profile pictures are not end-to-end encrypted: the server and everyone with an account here can see yours (unlike your messages).';

/**
 * A preview of a picked file through a `blob:` URL: `show(file)` (or `null`); each URL is
 * released when the next replaces it and when the component goes.
 */
export function useFilePreview(): [string | null, (file: Blob | null) => void] {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(
    () => () => {
      if (url) URL.revokeObjectURL(url);
    },
    [url],
  );
  const show = useCallback(
    (file: Blob | null) => setUrl(file ? URL.createObjectURL(file) : null),
    [],
  );
  return [url, show];
}

/** Why the browser cannot show the file as a picture, or `null` when it can. */
async function undecodable(file: Blob): Promise<string | null> {
  if (typeof createImageBitmap !== 'function') return null;
  try {
    (await createImageBitmap(file)).close();
    return null;
  } catch {
    return 'This file is not an image the browser can read.';
  }
}

/**
 * A file input for a profile picture: checks the type, size and that the browser can decode it
 * when a file is picked (an unusable one is refused with the reason) and reports the usable one.
 */
export function PicturePicker({
  id,
  label,
  onPick,
  disabled = false,
  describedBy,
}: {
  id: string;
  label: string;
  onPick: (file: File | null) => void;
  disabled?: boolean;
  describedBy?: string;
}) {
  const [problem, setProblem] = useState<string | null>(null);
  const errorId = `${id}-error`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="file"
        className="file-input"
        accept={AVATAR_INPUT_TYPES.join(',')}
        disabled={disabled}
        aria-describedby={
          [describedBy, problem ? errorId : null].filter(Boolean).join(' ') || undefined
        }
        aria-invalid={problem ? true : undefined}
        onChange={async (event) => {
          const file = event.target.files?.[0] ?? null;
          const reason = file ? (validateAvatarFile(file) ?? (await undecodable(file))) : null;
          setProblem(reason);
          onPick(file && !reason ? file : null);
        }}
      />
      {problem ? (
        <p className="error" id={errorId} role="alert">
          {problem}
        </p>
      ) : null}
    </div>
  );
}
