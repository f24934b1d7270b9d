// The app's screens and everything that works without decrypting a message: two people register
// in their own browsers (Alice on a laptop, Bob on a 390×844 phone), Alice starts a chat with Bob,
// the typing indicator, messages sent from elsewhere (opaque ciphertext through the API) appearing
// on both sides with Sent and Read ticks, Bob's socket cut and restored with what was sent
// meanwhile appearing, a group created; axe-core on the login, register, chat list, chat, new
// chat and new group screens at both sizes; screenshots of each.
import { randomUUID } from 'node:crypto';
import * as api from '../lib/api.mjs';
import {
  accessible,
  chatLink,
  composer,
  connectionStatus,
  createGroup,
  cuttableSockets,
  fitsViewport,
  messageCount,
  online,
  register,
  rows,
  sidebar,
  ticks,
  until,
  visible,
} from '../lib/app.mjs';
import { check, DESKTOP, PHONE } from '../lib/browser.mjs';

export default async function ui(run) {
  const tag = randomUUID().slice(0, 4);
  const aliceName = `Alice ${tag}`;
  const bobName = `Bob ${tag}`;
  const aliceAccount = { name: aliceName, email: api.uniqueEmail('alice'), password: api.PASSWORD };
  const bobAccount = { name: bobName, email: api.uniqueEmail('bob'), password: api.PASSWORD };
  const alice = await run.newPerson('alice', DESKTOP);
  const bob = await run.newPerson('bob', PHONE);
  const bobSockets = await cuttableSockets(bob.context);

  await run.step('the root address leads to the login form', async () => {
    await alice.page.goto(run.url('/'));
    await alice.page.waitForURL(/\/app\/login\/$/);
    await visible(alice.page.getByRole('heading', { name: 'Log in' }));
  });

  await run.step(
    'the login and register forms are accessible on a laptop and a phone',
    async () => {
      await accessible(run, alice.page, 'login (desktop)');
      await run.screenshot(alice.page, 'login-desktop');
      await bob.page.goto(run.url('/app/login/'));
      await visible(bob.page.getByRole('heading', { name: 'Log in' }));
      await fitsViewport(bob.page, 'login (phone)', [
        ['the Log in button', bob.page.getByRole('button', { name: 'Log in' })],
      ]);
      await accessible(run, bob.page, 'login (phone)');
      await run.screenshot(bob.page, 'login-phone');
      await bob.page.getByRole('link', { name: 'Create an account' }).click();
      await visible(bob.page.getByRole('heading', { name: 'Create an account' }));
      await accessible(run, bob.page, 'register (phone)');
      await run.screenshot(bob.page, 'register-phone');
    },
  );

  await run.step('Alice and Bob register, each in their own browser', async () => {
    await Promise.all([
      register(run, alice.page, aliceAccount),
      register(run, bob.page, bobAccount),
    ]);
    await visible(sidebar(alice.page).getByText(aliceName));
    await accessible(run, alice.page, 'chat list, empty (desktop)');
  });

  let chatId;
  await run.step('Alice finds Bob under New chat and opens a chat with him', async () => {
    await sidebar(alice.page).getByRole('link', { name: 'New chat' }).click();
    await alice.page.getByLabel('Search people').fill(bobName);
    const message = alice.page.getByRole('button', { name: `Message ${bobName}` });
    await visible(message);
    await accessible(run, alice.page, 'new chat (desktop)');
    await run.screenshot(alice.page, 'new-chat-desktop');
    await message.click();
    await alice.page.waitForURL(/\/app\/chat\/\?id=/);
    await visible(alice.page.getByRole('heading', { level: 2, name: bobName }));
    chatId = new URL(alice.page.url()).searchParams.get('id');
    run.data.chat_id = chatId;
  });

  await run.step('the chat appears in Bob’s list; on the phone it opens full screen', async () => {
    const link = chatLink(bob.page, aliceName);
    await visible(link);
    await fitsViewport(bob.page, 'chat list (phone)', [
      ['the New chat link', sidebar(bob.page).getByRole('link', { name: 'New chat' })],
      [`the chat with ${aliceName}`, link],
    ]);
    await accessible(run, bob.page, 'chat list (phone)');
    await run.screenshot(bob.page, 'chats-phone');
    await link.click();
    await bob.page.waitForURL(/\/app\/chat\/\?id=/);
    await visible(bob.page.getByRole('heading', { level: 2, name: aliceName }));
    check(!(await sidebar(bob.page).isVisible()), 'on a phone the chat list gives way to the chat');
    await fitsViewport(bob.page, 'chat (phone)', [
      ['the Back to chats link', bob.page.getByRole('link', { name: 'Back to chats' })],
      ['the message box', composer(bob.page)],
    ]);
  });

  await run.step('Bob sees “… is typing…” while Alice types', async () => {
    await composer(alice.page).fill('Hel');
    await visible(bob.page.getByText(`${aliceName} is typing…`));
    await composer(alice.page).fill('');
  });

  // Both are signed in in the browser; these sessions send through the API what the browsers
  // then show (random bytes as ciphertext: the apps show them as messages they cannot read).
  const aliceApi = await api.login(run.baseUrl, aliceAccount.email);
  const bobApi = await api.login(run.baseUrl, bobAccount.email);

  await run.step(
    'messages sent elsewhere appear on both sides: Sent, unread, then Read',
    async () => {
      await bob.page.getByRole('link', { name: 'Back to chats' }).click();
      await visible(chatLink(bob.page, aliceName));
      await api.postOpaqueMessage(run.baseUrl, aliceApi.access_token, chatId);
      await api.postOpaqueMessage(run.baseUrl, aliceApi.access_token, chatId);
      await until(
        'two messages in Alice’s chat',
        async () => (await messageCount(alice.page, bobName)) === 2,
      );
      await visible(ticks(rows(alice.page, bobName).last(), 'Sent'));
      await visible(chatLink(bob.page, aliceName).filter({ hasText: '2 unread' }));
      await chatLink(bob.page, aliceName).click();
      await until(
        'two messages in Bob’s chat',
        async () => (await messageCount(bob.page, aliceName)) === 2,
      );
      await visible(ticks(rows(alice.page, bobName).last(), 'Read'));
      await api.postOpaqueMessage(run.baseUrl, bobApi.access_token, chatId);
      await until(
        'Bob’s message in Alice’s chat',
        async () => (await messageCount(alice.page, bobName)) === 3,
      );
      check(
        (await ticks(rows(alice.page, bobName).last(), 'Read').count()) === 0,
        'ticks show on your own messages only',
      );
    },
  );

  await run.step(
    'the chat screen is accessible on both; on a laptop the list stays beside it',
    async () => {
      await accessible(run, alice.page, 'chat (desktop)');
      await accessible(run, bob.page, 'chat (phone)');
      await run.screenshot(alice.page, 'chat-desktop');
      await run.screenshot(bob.page, 'chat-phone');
      const list = await sidebar(alice.page).boundingBox();
      const chat = await alice.page.getByRole('main').boundingBox();
      check(list && chat && list.x + list.width <= chat.x + 1, 'the chat list is left of the chat');
      await fitsViewport(alice.page, 'chat (desktop)', [['the message box', composer(alice.page)]]);
    },
  );

  await run.step(
    'Bob’s connection drops; what Alice sends meanwhile appears once it is back',
    async () => {
      const cut = await bobSockets.cut();
      check(cut >= 1, 'Bob had an open socket to cut');
      await until(
        'Bob’s app to notice',
        async () => (await connectionStatus(bob.page)) !== 'Online',
      );
      const socketsBefore = bobSockets.urls.length;
      for (let i = 0; i < 3; i += 1) {
        await api.postOpaqueMessage(run.baseUrl, aliceApi.access_token, chatId);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      check((await messageCount(bob.page, aliceName)) === 3, 'nothing arrives while offline');
      await bobSockets.restore();
      await online(bob.page);
      await until(
        'the three messages sent meanwhile',
        async () => (await messageCount(bob.page, aliceName)) === 6,
      );
      const resumed = bobSockets.urls.slice(socketsBefore);
      run.data.reconnect_urls = resumed.map((url) => url.replace(/^.*\/ws/, '/ws'));
      check(
        resumed.some((url) => new URL(url).searchParams.has('cursor')),
        `the reconnect asks for a replay from its cursor: ${resumed.join(', ')}`,
      );
      await visible(ticks(rows(alice.page, bobName).last(), 'Read'));
    },
  );

  await run.step('Alice creates a group with Bob; it shows up in Bob’s list', async () => {
    const groupName = `Weekend ${tag}`;
    await sidebar(alice.page).getByRole('link', { name: 'New group' }).click();
    await visible(alice.page.getByRole('heading', { name: 'New group' }));
    await accessible(run, alice.page, 'new group (desktop)');
    await run.screenshot(alice.page, 'new-group-desktop');
    await createGroup(run, alice.page, groupName, [bobName]);
    await visible(alice.page.getByText('2 members'));
    await bob.page.getByRole('link', { name: 'Back to chats' }).click();
    await visible(chatLink(bob.page, groupName));
  });

  await run.step(
    'Bob renames himself elsewhere; Alice’s list and chat follow at once',
    async () => {
      const renamed = `Robert ${tag}`;
      await api.call(run.baseUrl, 'PUT', `/users/${bobApi.user.id}`, {
        token: bobApi.access_token,
        json: { name: renamed },
      });
      // No reload: the `user.updated` frame renames him wherever he shows.
      await visible(chatLink(alice.page, renamed));
      await chatLink(alice.page, renamed).click();
      await visible(alice.page.getByRole('heading', { level: 2, name: renamed }));
    },
  );
}
