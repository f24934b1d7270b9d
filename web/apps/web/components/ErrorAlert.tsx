/** A failure said where it happened, announced to screen readers; nothing when there is none. */
export function ErrorAlert({ error }: { error: string | null | undefined }) {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}
