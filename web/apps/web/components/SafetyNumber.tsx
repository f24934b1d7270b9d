import { useState } from 'react';

/**
 * "Verify" in a direct chat: the safety number over both people's devices, to compare out of
 * band (read aloud, or against `parley verify` in the CLI). Any device added, removed or
 * changed on either side changes it.
 */
export function SafetyNumber({ name, load }: { name: string; load: () => Promise<string> }) {
  const [shown, setShown] = useState<{ number: string } | { error: string } | null>(null);
  return (
    <>
      <button
        type="button"
        className="button button--small"
        aria-expanded={shown !== null}
        onClick={() => {
          if (shown) return setShown(null);
          load().then(
            (number) => setShown({ number }),
            (error: unknown) =>
              setShown({ error: error instanceof Error ? error.message : String(error) }),
          );
        }}
      >
        Verify
      </button>
      {shown ? (
        <div className="notice safety" role="status">
          {'number' in shown ? (
            <>
              <p>
                Safety number with {name}. Compare it with the one {name} sees: if they match,
                nobody is in the middle.
              </p>
              <p>
                <code className="safety-number" data-safety-number>
                  {shown.number}
                </code>
              </p>
            </>
          ) : (
            <p className="error">{shown.error}</p>
          )}
        </div>
      ) : null}
    </>
  );
}
