import { useEffect, useState } from 'react';
import { useAppState, useController } from '../components/AppProvider';
import { ConfirmDialog } from '../components/Dialog';
import { PanelPage } from '../components/PanelPage';
import { Shell } from '../components/Shell';
import { useAsyncAction } from '../components/useAsyncAction';
import { errorMessage } from '../lib/features/apiError';
import { deviceName, formatLastSeen, keyFingerprint } from '../lib/features/devices';
import type { OwnDevice } from '../lib/features/types';

/** Your devices (one per sign-in), with a way to sign one out. */
export default function DevicesPage() {
  return (
    <Shell mode="detail">
      <PanelPage title="Devices" titleId="devices-title">
        <DeviceList />
      </PanelPage>
    </Shell>
  );
}

type Listing =
  | { status: 'loading' }
  | { status: 'ready'; devices: OwnDevice[] }
  | { status: 'error'; error: string };

function DeviceList() {
  const controller = useController();
  const { e2ee } = useAppState();
  const [listing, setListing] = useState<Listing>({ status: 'loading' });
  const [removing, setRemoving] = useState<OwnDevice | null>(null);
  const [announcement, setAnnouncement] = useState('');
  const removal = useAsyncAction();
  const [now] = useState(() => Date.now());

  const [version, setVersion] = useState(0);
  const reload = () => setVersion((n) => n + 1);

  // Read again when this device's keys got published (it is listed from then on).
  useEffect(() => {
    if (!controller) return;
    let current = true;
    controller.features.devices.list().then(
      (devices) => current && setListing({ status: 'ready', devices }),
      (error: unknown) => current && setListing({ status: 'error', error: errorMessage(error) }),
    );
    return () => {
      current = false;
    };
  }, [controller, version, e2ee.status]);

  async function remove(device: OwnDevice) {
    if (!controller) return;
    const done = await removal.run(() => controller.features.devices.remove(device.device_id));
    if (!done) return;
    setRemoving(null);
    setAnnouncement(`${deviceName(device)} was signed out.`);
    reload();
  }

  return (
    <>
      <p className="hint">
        Each place you signed in is a device with its own encryption keys. Remove one you no longer
        use or do not recognise: it is signed out at once and gets no new messages.
      </p>
      <p className="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      {listing.status === 'loading' ? <p className="empty">Loading devices…</p> : null}
      {listing.status === 'error' ? (
        <div className="stack">
          <p className="error" role="alert">
            {listing.error}
          </p>
          <div>
            <button
              type="button"
              className="button"
              onClick={() => {
                setListing({ status: 'loading' });
                reload();
              }}
            >
              Try again
            </button>
          </div>
        </div>
      ) : null}
      {listing.status === 'ready' && !listing.devices.some((d) => d.current) ? (
        <p className="notice" role="note">
          This browser is not listed: a device appears once it has published its encryption keys
          {e2ee.status === 'unavailable'
            ? ', which this browser cannot do yet (end-to-end encryption is not available here).'
            : '.'}
        </p>
      ) : null}
      {listing.status === 'ready' && listing.devices.length === 0 ? (
        <p className="empty">No devices with encryption keys yet.</p>
      ) : null}
      {listing.status === 'ready' ? (
        <ul className="devices" aria-label="Your devices">
          {listing.devices.map((device) => {
            const name = deviceName(device);
            return (
              <li key={device.device_id} className="devices__item">
                <div className="devices__text">
                  <p className="devices__name">
                    {name}
                    {device.current ? <span className="tag">This device</span> : null}
                  </p>
                  <p className="hint">
                    Added{' '}
                    <time dateTime={device.created_at}>
                      {new Date(device.created_at).toLocaleDateString()}
                    </time>
                    {' · '}
                    Last active{' '}
                    <time dateTime={device.last_seen_at}>
                      {formatLastSeen(device.last_seen_at, now)}
                    </time>
                    {' · '}
                    <span title="The start of this device's signing key (the CLI shows it too)">
                      Key {keyFingerprint(device)}
                    </span>
                  </p>
                </div>
                {device.current ? (
                  <span className="hint devices__note">Log out to remove</span>
                ) : (
                  <button
                    type="button"
                    className="button button--small button--danger-outline"
                    onClick={() => {
                      removal.reset();
                      setRemoving(device);
                    }}
                    aria-label={`Remove ${name}`}
                  >
                    Remove
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      ) : null}
      {removing ? (
        <ConfirmDialog
          title={`Remove ${deviceName(removing)}?`}
          message={
            <p>
              It is signed out at once and its keys are deleted, so it can no longer read new
              messages. Signing in there again makes it a new device.
            </p>
          }
          choices={[{ label: 'Remove device', danger: true, onChoose: () => remove(removing) }]}
          onClose={() => setRemoving(null)}
          busy={removal.busy}
          error={removal.error}
        />
      ) : null}
    </>
  );
}
