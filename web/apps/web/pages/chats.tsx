import Head from 'next/head';
import { Shell } from '../components/Shell';

/** The chat list (on wide screens with an empty pane beside it). */
export default function ChatsPage() {
  return (
    <Shell mode="list">
      <Head>
        <title>Chats · Parley</title>
      </Head>
      <p className="empty placeholder">Choose a chat, or start a new one.</p>
    </Shell>
  );
}
