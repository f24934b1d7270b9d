import Link from 'next/link';
import { useMemo } from 'react';
import { formatTime } from '../lib/format';
import {
  directPeer,
  previewText,
  selectChatList,
  selectChatTitle,
  selectTyping,
} from '../lib/store';
import { useAppState } from './AppProvider';
import { Avatar } from './Avatar';

/** Your chats, newest activity first, with unread counts and the last message. */
export function ChatList({ activeChatId }: { activeChatId: string | null }) {
  const state = useAppState();
  const chats = useMemo(() => selectChatList(state), [state]);

  if (!state.chatsLoaded) {
    return <p className="empty">Loading chats…</p>;
  }
  if (chats.length === 0) {
    return <p className="empty">No chats yet. Start one with “New chat”.</p>;
  }
  return (
    <ul className="chatlist">
      {chats.map((chat) => {
        const title = selectChatTitle(state, chat.id);
        const typing = selectTyping(state, chat.id);
        const preview = typing.length > 0 ? 'typing…' : previewText(state, chat);
        const unread = chat.unread_count;
        const peer = chat.type === 'direct' ? directPeer(state, chat.id) : null;
        const picture = peer ? (state.users[peer]?.avatar_media_id ?? null) : null;
        return (
          <li key={chat.id}>
            <Link
              href={{ pathname: '/chat', query: { id: chat.id } }}
              className="chatlist__item"
              aria-current={chat.id === activeChatId ? 'page' : undefined}
            >
              <Avatar name={title} group={chat.type === 'group'} mediaId={picture} />
              <span className="chatlist__text">
                <span className="chatlist__row">
                  <span className="chatlist__title">{title}</span>
                  <time className="chatlist__time" dateTime={chat.last_activity_at}>
                    {formatTime(chat.last_activity_at)}
                  </time>
                </span>
                <span className="chatlist__row">
                  <span
                    className={`chatlist__preview${typing.length > 0 ? ' chatlist__preview--typing' : ''}`}
                  >
                    {preview}
                  </span>
                  {unread > 0 ? (
                    <span className="badge">
                      {unread > 99 ? '99+' : unread}
                      <span className="visually-hidden"> unread</span>
                    </span>
                  ) : null}
                </span>
              </span>
            </Link>
          </li>
        );
      })}
    </ul>
  );
}
