import Head from 'next/head';
import Link from 'next/link';
import { useEffect, useRef, useState } from 'react';
import { useAppState, useAuthRedirect, useController } from '../components/AppProvider';
import { Avatar } from '../components/Avatar';
import { Splash } from '../components/Splash';
import type { CallPeer, CurrentCall } from '../lib/calls/state';
import { selectChatTitle } from '../lib/store';

const PHASE_TEXT: Record<CurrentCall['phase'], string> = {
  starting: 'Calling…',
  ringing: 'Ringing…',
  connecting: 'Connecting…',
  connected: '',
  reconnecting: 'Reconnecting…',
  ended: '',
};

/** `/call`: the call you are in, full screen (it goes on if you look at a chat meanwhile). */
export default function CallPage() {
  const status = useAuthRedirect('signed_in');
  const state = useAppState();
  const controller = useController();
  const current = state.calls.current;
  if (status !== 'signed_in' || !controller) return <Splash />;
  if (!current) {
    return (
      <main className="call call--none" id="main">
        <p>You are not in a call.</p>
        <Link className="button" href="/chats">
          Back to chats
        </Link>
      </main>
    );
  }
  const title = selectChatTitle(state, current.chatId);
  const statusText = current.phase === 'ended' ? current.endedReason : PHASE_TEXT[current.phase];
  const video = current.kind === 'video' && !current.audioOnly;
  return (
    <main
      className={`call call--${current.phase}`}
      id="main"
      aria-labelledby="call-title"
      data-call-id={current.callId ?? undefined}
    >
      <Head>
        <title>{`Call · ${title} · Parley`}</title>
      </Head>
      <header className="call__header">
        <h1 id="call-title">{title}</h1>
        <p className="call__status" role="status" aria-live="polite">
          {statusText || <CallTimer since={current.connectedAt} />}
        </p>
      </header>
      <CallGrid call={current} video={video} />
      <CallControls call={current} />
    </main>
  );
}

function CallTimer({ since }: { since: number | null }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, []);
  if (!since) return null;
  const seconds = Math.max(0, Math.floor((now - since) / 1000));
  const mm = String(Math.floor(seconds / 60)).padStart(2, '0');
  const ss = String(seconds % 60).padStart(2, '0');
  return <span aria-label={`Call time ${mm}:${ss}`}>{`${mm}:${ss}`}</span>;
}

function CallGrid({ call, video }: { call: CurrentCall; video: boolean }) {
  const state = useAppState();
  const me = state.auth.userId ?? '';
  const count = call.peers.length + 1;
  return (
    <ul className={`call__grid call__grid--${Math.min(count, 6)}`} aria-label="Participants">
      {call.peers.map((peer) => (
        <PeerTile key={peer.userId} peer={peer} video={video} streams={call.streams} />
      ))}
      <SelfTile
        name={state.users[me]?.name ?? 'You'}
        mediaId={state.users[me]?.avatar_media_id ?? null}
        speaking={call.speaking}
        showVideo={video && !call.cameraOff}
        muted={call.muted}
      />
    </ul>
  );
}

function PeerTile({ peer, video, streams }: { peer: CallPeer; video: boolean; streams: number }) {
  const state = useAppState();
  const controller = useController();
  const user = state.users[peer.userId];
  const name = user?.name ?? 'Someone';
  const mediaRef = useRef<HTMLVideoElement>(null);
  const stream = controller?.calls.streamOf(peer.userId) ?? null;
  const showVideo = video && peer.video && !!stream?.getVideoTracks().length;

  useEffect(() => {
    void controller?.ensureUsers([peer.userId]).catch(() => undefined);
  }, [controller, peer.userId]);

  useEffect(() => {
    const element = mediaRef.current;
    if (element && element.srcObject !== stream) element.srcObject = stream;
  }, [stream, streams]);

  return (
    <li
      className={`tile${peer.speaking ? ' tile--speaking' : ''}`}
      data-user-id={peer.userId}
      aria-label={`${name}${peer.speaking ? ', speaking' : ''}`}
    >
      {/* One element plays both: audio is heard even when the video is hidden. */}
      <video
        ref={mediaRef}
        className={showVideo ? 'tile__video' : 'tile__video tile__video--hidden'}
        autoPlay
        playsInline
        aria-label={`Video of ${name}`}
      />
      {showVideo ? null : (
        <Avatar name={name} mediaId={user?.avatar_media_id ?? null} size="large" />
      )}
      <span className="tile__name">{name}</span>
    </li>
  );
}

function SelfTile({
  name,
  mediaId,
  speaking,
  showVideo,
  muted,
}: {
  name: string;
  mediaId: string | null;
  speaking: boolean;
  showVideo: boolean;
  muted: boolean;
}) {
  const controller = useController();
  const ref = useRef<HTMLVideoElement>(null);
  const stream = controller?.calls.localStream ?? null;
  useEffect(() => {
    const element = ref.current;
    if (element && element.srcObject !== stream) element.srcObject = stream;
  });
  return (
    <li
      className={`tile tile--self${speaking ? ' tile--speaking' : ''}`}
      aria-label={`You${muted ? ', muted' : ''}`}
    >
      {showVideo ? (
        <video ref={ref} className="tile__video tile__video--mirror" autoPlay playsInline muted />
      ) : (
        <Avatar name={name} mediaId={mediaId} size="large" />
      )}
      <span className="tile__name">You{muted ? ' (muted)' : ''}</span>
    </li>
  );
}

function CallControls({ call }: { call: CurrentCall }) {
  const controller = useController();
  const calls = controller?.calls;
  if (call.phase === 'ended') {
    return (
      <div className="call__controls">
        <Link className="call-button" href={{ pathname: '/chat', query: { id: call.chatId } }}>
          Back to the chat
        </Link>
      </div>
    );
  }
  const video = call.kind === 'video';
  return (
    <div className="call__controls" role="group" aria-label="Call controls">
      <button
        type="button"
        className="call-button"
        aria-pressed={call.muted}
        onClick={() => calls?.toggleMute()}
      >
        {call.muted ? 'Unmute' : 'Mute'}
      </button>
      {video ? (
        <button
          type="button"
          className="call-button"
          aria-pressed={call.cameraOff}
          onClick={() => void calls?.toggleCamera()}
        >
          {call.cameraOff ? 'Camera on' : 'Camera off'}
        </button>
      ) : null}
      {video ? (
        <button
          type="button"
          className="call-button"
          aria-pressed={call.audioOnly}
          onClick={() => void calls?.toggleAudioOnly()}
        >
          Audio only
        </button>
      ) : null}
      <button
        type="button"
        className="call-button call-button--end"
        onClick={() => void calls?.hangUp()}
      >
        Hang up
      </button>
    </div>
  );
}
