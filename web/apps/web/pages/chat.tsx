import Head from 'next/head';
import Link from 'next/link';
import { useRouter } from 'next/router';
import type { MessageView } from '@parley/sdk';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { useAppState, useController } from '../components/AppProvider';
import { Avatar } from '../components/Avatar';
import { CallButtons } from '../components/calls/CallButtons';
import { Composer } from '../components/Composer';
import { EncryptionNotices } from '../components/EncryptionNotices';
import { MessageOptionsButton, MessageOptionsDialog } from '../components/MessageOptions';
import { MessageRow, PendingRow } from '../components/MessageRow';
import { SafetyNumber } from '../components/SafetyNumber';
import { Shell } from '../components/Shell';
import { VirtualList } from '../components/VirtualList';
import type { AttachmentInfo } from '../lib/crypto';
import {
  directPeer,
  messageTicks,
  selectChatTitle,
  selectKeyChanges,
  timelineOf,
  selectTyping,
  type TimelineItem,
} from '../lib/store';

const getKey = (item: TimelineItem) => item.key;

/** `/chat?id=…` (a static export has no dynamic segments). */
export default function ChatPage() {
  const router = useRouter();
  const chatId = router.isReady && typeof router.query.id === 'string' ? router.query.id : null;
  return (
    <Shell mode="detail" activeChatId={chatId}>
      {chatId ? (
        <ChatView key={chatId} chatId={chatId} />
      ) : (
        <p className="empty">No chat chosen.</p>
      )}
    </Shell>
  );
}

function ChatView({ chatId }: { chatId: string }) {
  const state = useAppState();
  const controller = useController();
  const me = state.auth.userId;
  const chat = state.chats[chatId];
  const detail = state.details[chatId];
  const messages = state.messages[chatId];
  const title = selectChatTitle(state, chatId);
  const timeline = useMemo(() => timelineOf(messages), [messages]);
  const typing = selectTyping(state, chatId);
  const isGroup = (chat?.type ?? detail?.type) === 'group';
  const peer = isGroup ? null : directPeer(state, chatId);
  const peerAvatar = peer ? (state.users[peer]?.avatar_media_id ?? null) : null;
  const [optionsFor, setOptionsFor] = useState<MessageView | null>(null);
  const removed = state.chatsLoaded && !chat && !detail;

  useEffect(() => {
    if (!controller) return;
    void controller.openChat(chatId).catch(() => undefined);
    void controller.calls.refreshLive(chatId).catch(() => undefined);
    return () => void controller.openChat(null);
  }, [controller, chatId]);

  // Read what arrives while the tab is in the background once it is back.
  useEffect(() => {
    if (!controller) return;
    const onVisible = () => {
      if (document.visibilityState === 'visible')
        void controller.markRead(chatId).catch(() => undefined);
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, [controller, chatId]);

  const onReachTop = useCallback(() => {
    void controller?.loadOlder(chatId).catch(() => undefined);
  }, [controller, chatId]);

  const onRetry = useCallback(
    (clientMsgId: string) => void controller?.retry(chatId, clientMsgId),
    [controller, chatId],
  );

  const onLoadMedia = useCallback(
    (info: AttachmentInfo) => controller?.loadMedia(info),
    [controller],
  );

  const keyChanges = useMemo(() => selectKeyChanges(state, chatId), [state, chatId]);
  const notices = useMemo(
    () => [...(state.notices[''] ?? []), ...(state.notices[chatId] ?? [])],
    [state.notices, chatId],
  );

  const renderItem = useCallback(
    (item: TimelineItem) => {
      if (item.kind === 'pending') return <PendingRow pending={item.pending} onRetry={onRetry} />;
      const { message } = item;
      const mine = message.sender_id === me;
      const body = state.bodies[message.id];
      const file = body?.status === 'ok' ? body.file : undefined;
      const sender = mine ? 'you' : (state.users[message.sender_id]?.name ?? 'Someone');
      return (
        <MessageRow
          message={message}
          body={body}
          mine={mine}
          senderName={isGroup && !mine ? sender : null}
          ticks={mine ? messageTicks(state, message) : 'sent'}
          media={file ? state.media[file.media_id] : undefined}
          onLoadMedia={onLoadMedia}
          actions={
            <MessageOptionsButton message={message} senderName={sender} onOpen={setOptionsFor} />
          }
        />
      );
    },
    [state, me, isGroup, onRetry, onLoadMedia, setOptionsFor],
  );

  const typingNames = typing.map((id) => state.users[id]?.name ?? 'Someone');
  const subtitle = isGroup
    ? `${detail?.members.length ?? chat?.member_count ?? 0} members`
    : state.connection === 'open'
      ? 'Direct chat'
      : '';

  if (removed) {
    return (
      <section className="chat" aria-labelledby="chat-title">
        <header className="bar chat__bar">
          <Link href="/chats" className="back" aria-label="Back to chats">
            ←
          </Link>
          <h2 id="chat-title">Chat not available</h2>
        </header>
        <p className="empty">This chat does not exist or you are no longer a member.</p>
      </section>
    );
  }

  return (
    <section className="chat" aria-labelledby="chat-title">
      <Head>
        <title>{`${title} · Parley`}</title>
      </Head>
      <header className="bar chat__bar">
        <Link href="/chats" className="back" aria-label="Back to chats">
          ←
        </Link>
        <Link
          href={{ pathname: '/chat-info', query: { id: chatId } }}
          className="chat__heading"
          aria-describedby="chat-info-hint"
        >
          <Avatar name={title} group={isGroup} mediaId={peerAvatar} />
          <span className="chat__titles">
            <h2 id="chat-title">{title}</h2>
            <span className="chat__subtitle">{subtitle}</span>
          </span>
          <span id="chat-info-hint" className="visually-hidden">
            {isGroup ? 'Group info' : 'Contact info'}
          </span>
        </Link>
        <CallButtons chatId={chatId} title={title} />
        {peer && state.e2ee.status === 'ready' ? (
          <SafetyNumber
            name={title}
            load={() => controller?.safetyNumber(peer) ?? Promise.resolve('')}
          />
        ) : null}
      </header>
      <EncryptionNotices
        status={state.e2ee.status}
        reason={state.e2ee.reason}
        keyChanges={keyChanges}
        notices={notices}
        me={me}
        nameOf={(userId) => state.users[userId]?.name ?? 'Someone'}
        onAccept={async (change) => controller?.acceptKeyChange(change)}
        onSafetyNumber={async (userId) => controller?.safetyNumber(userId) ?? ''}
        onDismiss={() => controller?.dismissNotices(chatId)}
      />
      {messages?.loaded ? (
        timeline.length === 0 ? (
          <p className="empty chat__empty">No messages yet. Say hello.</p>
        ) : (
          <VirtualList
            items={timeline}
            getKey={getKey}
            renderItem={renderItem}
            estimateHeight={72}
            onReachTop={onReachTop}
            label={`Messages with ${title}`}
            header={
              messages.loadingOlder ? (
                <p className="vlist__loading">Loading older messages…</p>
              ) : null
            }
          />
        )
      ) : (
        <p className="empty chat__empty">Loading messages…</p>
      )}
      <p className="typing" aria-live="polite">
        {typingNames.length === 1
          ? `${typingNames[0]} is typing…`
          : typingNames.length > 1
            ? `${typingNames.join(', ')} are typing…`
            : ''}
      </p>
      {optionsFor ? (
        <MessageOptionsDialog message={optionsFor} onClose={() => setOptionsFor(null)} />
      ) : null}
      <Composer
        onSend={(text) => void controller?.sendText(chatId, text)}
        onSendFile={(file, caption) => void controller?.sendFile(chatId, file, caption)}
        onTyping={() => controller?.notifyTyping(chatId)}
      />
    </section>
  );
}
