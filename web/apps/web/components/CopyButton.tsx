import { useEffect, useState } from 'react';

async function copyText(text: string, fallbackInput: HTMLInputElement | null): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission (or an insecure context): select it for the user to copy.
    if (!fallbackInput) return false;
    fallbackInput.focus();
    fallbackInput.select();
    return false;
  }
}

/** Copies `text`; says "Copied" (announced) or, when it cannot, selects the field instead. */
export function CopyButton({
  text,
  label,
  fieldId,
}: {
  text: string;
  /** E.g. "Copy link". */
  label: string;
  /** The input showing the text, selected when copying is not allowed. */
  fieldId?: string;
}) {
  const [result, setResult] = useState<'copied' | 'select' | null>(null);
  useEffect(() => {
    if (!result) return;
    const timer = setTimeout(() => setResult(null), 3000);
    return () => clearTimeout(timer);
  }, [result]);
  return (
    <>
      <button
        type="button"
        className="button button--small"
        onClick={async () => {
          const field = fieldId ? document.getElementById(fieldId) : null;
          const copied = await copyText(text, field instanceof HTMLInputElement ? field : null);
          setResult(copied ? 'copied' : 'select');
        }}
      >
        {result === 'copied' ? 'Copied' : label}
      </button>
      <span className="visually-hidden" role="status" aria-live="polite">
        {result === 'copied'
          ? 'Copied to the clipboard.'
          : result === 'select'
            ? 'Copying is not allowed here: the text is selected, copy it with your keyboard.'
            : ''}
      </span>
    </>
  );
}
