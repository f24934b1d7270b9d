import Link from 'next/link';
import { useRouter } from 'next/router';
import { useEffect, useState } from 'react';
import { useAppState, useController } from '../components/AppProvider';
import { Avatar, UserAvatar } from '../components/Avatar';
import { ConfirmDialog } from '../components/Dialog';
import { AddMembers, GroupMembers } from '../components/GroupMembers';
import { InvitePanel } from '../components/InvitePanel';
import { PanelPage } from '../components/PanelPage';
import { Shell } from '../components/Shell';
import { useAsyncAction } from '../components/useAsyncAction';
import { amAdmin } from '../lib/features/groups';
import { directPeer, selectChatTitle } from '../lib/store';

/** `/chat-info?id=…`: a group's members and settings, or the other person of a direct chat. */
export default function ChatInfoPage() {
  const router = useRouter();
  const chatId = router.isReady && typeof router.query.id === 'string' ? router.query.id : null;
  return (
    <Shell mode="detail" activeChatId={chatId}>
      {chatId ? (
        <ChatInfo key={chatId} chatId={chatId} />
      ) : (
        <p className="empty">No chat chosen.</p>
      )}
    </Shell>
  );
}

function ChatInfo({ chatId }: { chatId: string }) {
  const state = useAppState();
  const controller = useController();
  const detail = state.details[chatId];
  const chat = state.chats[chatId];
  const isGroup = (detail?.type ?? chat?.type) === 'group';
  const title = selectChatTitle(state, chatId);
  const [loadFailed, setLoadFailed] = useState(false);

  // Members and roles as they are now (frames keep them current while the page is open).
  useEffect(() => {
    controller?.loadDetail(chatId).catch(() => setLoadFailed(true));
  }, [controller, chatId]);

  const back = { href: { pathname: '/chat', query: { id: chatId } }, label: 'Back to the chat' };
  const gone = (state.chatsLoaded && !chat && !detail) || (loadFailed && !detail);
  if (gone) {
    return (
      <PanelPage title="Chat not available" titleId="info-title">
        <p className="empty">This chat does not exist or you are no longer a member.</p>
      </PanelPage>
    );
  }
  return (
    <PanelPage title={isGroup ? 'Group info' : 'Contact info'} titleId="info-title" back={back}>
      {!detail ? (
        <p className="empty">Loading…</p>
      ) : isGroup ? (
        <GroupInfo chatId={chatId} title={title} />
      ) : (
        <ContactInfo chatId={chatId} />
      )}
    </PanelPage>
  );
}

function GroupInfo({ chatId, title }: { chatId: string; title: string }) {
  const state = useAppState();
  const admin = amAdmin(state, chatId);
  const count = state.details[chatId]?.members.length ?? 0;
  return (
    <>
      <div className="identity">
        <Avatar name={title} group size="large" />
        <div>
          <p className="identity__name">{title}</p>
          <p className="hint">
            Group · {count} {count === 1 ? 'member' : 'members'}
          </p>
        </div>
      </div>
      <GroupMembers chatId={chatId} />
      {admin ? <AddMembers chatId={chatId} /> : null}
      {admin ? <InvitePanel chatId={chatId} /> : null}
      <LeaveGroup chatId={chatId} title={title} />
    </>
  );
}

function LeaveGroup({ chatId, title }: { chatId: string; title: string }) {
  const state = useAppState();
  const controller = useController();
  const router = useRouter();
  const [asking, setAsking] = useState(false);
  const { busy, error, run, reset } = useAsyncAction();
  const me = state.auth.userId;
  const members = state.details[chatId]?.members ?? [];
  const otherAdmins = members.filter((m) => m.user_id !== me && m.role === 'admin').length;
  const lastAdmin = amAdmin(state, chatId) && otherAdmins === 0 && members.length > 1;

  async function leave() {
    const done = await run(async () => {
      await controller?.features.groups.leave(chatId);
    });
    if (done) await router.replace('/chats');
  }

  return (
    <section className="card stack" aria-labelledby="leave-title">
      <h3 id="leave-title">Leave</h3>
      <div>
        <button
          type="button"
          className="button button--danger-outline"
          onClick={() => {
            reset();
            setAsking(true);
          }}
        >
          Leave group
        </button>
      </div>
      {asking ? (
        <ConfirmDialog
          title={`Leave ${title}?`}
          message={
            <>
              <p>You stop getting its messages. You can rejoin with a working invite link.</p>
              {lastAdmin ? (
                <p>You are its only admin: another member becomes admin when you leave.</p>
              ) : null}
            </>
          }
          choices={[{ label: 'Leave group', danger: true, onChoose: leave }]}
          onClose={() => setAsking(false)}
          busy={busy}
          error={error}
        />
      ) : null}
    </section>
  );
}

function ContactInfo({ chatId }: { chatId: string }) {
  const state = useAppState();
  const peer = directPeer(state, chatId);
  const user = peer ? state.users[peer] : undefined;
  return (
    <>
      <div className="identity">
        <UserAvatar userId={peer} size="large" />
        <div>
          <p className="identity__name">{user?.name ?? 'Someone'}</p>
          {user?.status ? <p className="hint">{user.status}</p> : null}
        </div>
      </div>
      <section className="card stack" aria-labelledby="verify-title">
        <h3 id="verify-title">Encryption</h3>
        <p className="hint">
          Messages in this chat are end-to-end encrypted. To make sure nobody is in between, compare
          your safety number with {user?.name ?? 'them'} in person or on a call.
        </p>
        <div>
          <Link className="button" href={{ pathname: '/safety', query: { chat: chatId } }}>
            View safety number
          </Link>
        </div>
      </section>
    </>
  );
}
