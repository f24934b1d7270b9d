// An end-to-end encrypted conversation between two browsers: Alice (laptop) and Bob (phone)
// register, Alice starts a chat and writes, Bob reads it decrypted and Alice's message turns Read,
// Bob's typing shows on Alice's screen before his reply arrives decrypted, Alice sends a photo
// that Bob's browser downloads, decrypts and shows, and a video whose preview Bob sees before he
// plays it; the server holds only ciphertext.
import { randomUUID } from 'node:crypto';
import * as api from '../lib/api.mjs';
import {
  accessible,
  chatLink,
  composer,
  gone,
  register,
  rowWith,
  sendText,
  startDirectChat,
  ticks,
  until,
  visible,
} from '../lib/app.mjs';
import { check, DESKTOP, PHONE } from '../lib/browser.mjs';
import { png } from '../lib/files.mjs';

/** The `<img>` of the photo `name` in `row` once decrypted: its `blob:` source and size. */
export async function shownPhoto(row, name) {
  const image = row.getByRole('img', { name, exact: true });
  await visible(image);
  return until(`the photo ${name} to be decoded`, () =>
    image.evaluate((img) =>
      img.complete && img.naturalWidth > 0
        ? { src: img.src.slice(0, 5), width: img.naturalWidth, height: img.naturalHeight }
        : null,
    ),
  );
}

export default async function conversation(run) {
  const tag = randomUUID().slice(0, 4);
  const aliceAccount = {
    name: `Alice ${tag}`,
    email: api.uniqueEmail('alice'),
    password: api.PASSWORD,
  };
  const bobAccount = { name: `Bob ${tag}`, email: api.uniqueEmail('bob'), password: api.PASSWORD };
  const [aliceName, bobName] = [aliceAccount.name, bobAccount.name];
  const alice = await run.newPerson('alice', DESKTOP);
  const bob = await run.newPerson('bob', PHONE);
  const hello = `Hello ${bobName}, this is end-to-end encrypted`;
  const reply = `Hi ${aliceName}, I can read it`;

  await run.step('Alice and Bob register, each in their own browser', async () => {
    await Promise.all([
      register(run, alice.page, aliceAccount),
      register(run, bob.page, bobAccount),
    ]);
  });

  await run.step('no script on the page can read a refresh token', async () => {
    const cookies = await alice.context.cookies();
    const refresh = cookies.find((cookie) => cookie.name === 'parley_refresh');
    check(refresh, `no refresh cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
    check(
      refresh.httpOnly && refresh.sameSite === 'Strict' && refresh.path === '/auth/',
      `the refresh cookie is readable or sent too widely: ${JSON.stringify({ ...refresh, value: '…' })}`,
    );
    // What a script injected into the page could reach: cookies, web storage, IndexedDB.
    const exposed = await alice.page.evaluate(async (secret) => {
      const found = [];
      if (document.cookie.includes(secret)) found.push('document.cookie');
      for (const storage of [localStorage, sessionStorage]) {
        for (let i = 0; i < storage.length; i += 1) {
          const key = storage.key(i);
          if (`${key}${storage.getItem(key)}`.includes(secret)) found.push(`storage ${key}`);
        }
      }
      for (const { name } of await indexedDB.databases()) {
        const db = await new Promise((resolve, reject) => {
          const request = indexedDB.open(name);
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        });
        for (const storeName of db.objectStoreNames) {
          const values = await new Promise((resolve, reject) => {
            const request = db.transaction(storeName).objectStore(storeName).getAll();
            request.onsuccess = () => resolve(request.result);
            request.onerror = () => reject(request.error);
          });
          const text = JSON.stringify(values, (_key, value) =>
            value instanceof Uint8Array || value instanceof ArrayBuffer ? '[bytes]' : value,
          );
          if (text.includes(secret)) found.push(`IndexedDB ${name}/${storeName}`);
        }
        db.close();
      }
      return found;
    }, refresh.value);
    check(exposed.length === 0, `the refresh token is readable by page script in: ${exposed}`);
  });

  let chatId;
  await run.step('Alice starts a chat with Bob and writes; Bob reads it decrypted', async () => {
    chatId = await startDirectChat(run, alice.page, bobName);
    run.data.chat_id = chatId;
    await sendText(alice.page, hello);
    await visible(ticks(rowWith(alice.page, bobName, hello), 'Sent'));
    const link = chatLink(bob.page, aliceName);
    await visible(link.filter({ hasText: hello }));
    await link.click();
    await visible(rowWith(bob.page, aliceName, hello));
  });

  await run.step('Alice’s message turns Read once Bob has it on screen', async () => {
    await visible(ticks(rowWith(alice.page, bobName, hello), 'Read'));
  });

  await run.step('Alice sees Bob typing; his reply arrives decrypted', async () => {
    await composer(bob.page).fill(reply.slice(0, 4));
    await visible(alice.page.getByText(`${bobName} is typing…`));
    await sendText(bob.page, reply);
    await visible(rowWith(alice.page, bobName, reply));
    await gone(alice.page.getByText(`${bobName} is typing…`));
    await visible(ticks(rowWith(bob.page, aliceName, reply), 'Read'));
  });

  await run.step('Alice sends a photo; Bob’s browser decrypts and shows it', async () => {
    const photo = png(160, 120, 3);
    await composer(alice.page).fill('the beach');
    await alice.page.getByLabel('Photo or video to send').setInputFiles({
      name: 'beach.png',
      mimeType: 'image/png',
      buffer: photo,
    });
    const mine = await shownPhoto(rowWith(alice.page, bobName, 'the beach'), 'beach.png');
    const theirs = await shownPhoto(rowWith(bob.page, aliceName, 'the beach'), 'beach.png');
    run.data.photo = { bytes: photo.length, sender: mine, receiver: theirs };
    check(theirs.src === 'blob:', `shown from a decrypted blob: ${JSON.stringify(theirs)}`);
    check(
      theirs.width === 160 && theirs.height === 120,
      `decoded at its size: ${JSON.stringify(theirs)}`,
    );
  });

  await run.step('Alice sends a video; Bob sees its preview, then plays it decrypted', async () => {
    // A real WebM, recorded in Alice's browser from a red canvas (repainted: a frame each time).
    const recorded = await alice.page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      [canvas.width, canvas.height] = [192, 108];
      const context = canvas.getContext('2d');
      const paint = (colour) => {
        context.fillStyle = colour;
        context.fillRect(0, 0, canvas.width, canvas.height);
      };
      paint('#d00000');
      const recorder = new MediaRecorder(canvas.captureStream(25), { mimeType: 'video/webm' });
      const chunks = [];
      recorder.ondataavailable = (event) => chunks.push(event.data);
      const stopped = new Promise((resolve) => (recorder.onstop = resolve));
      recorder.start(100);
      const timer = setInterval(() => paint('#d00000'), 40);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      clearInterval(timer);
      recorder.stop();
      await stopped;
      const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
      let binary = '';
      for (const byte of bytes) binary += String.fromCharCode(byte);
      return btoa(binary);
    });
    const video = Buffer.from(recorded, 'base64');
    await composer(alice.page).fill('the waves');
    await alice.page.getByLabel('Photo or video to send').setInputFiles({
      name: 'waves.webm',
      mimeType: 'video/webm',
      buffer: video,
    });
    const row = rowWith(bob.page, aliceName, 'the waves');
    const play = row.getByRole('button', { name: /^Play video waves\.webm\b/ });
    await visible(play);
    // The preview is the thumbnail carried inside the encrypted message: nothing downloaded yet.
    const preview = await until('the video’s preview to be decoded', () =>
      play
        .locator('img')
        .evaluate((img) =>
          img.complete && img.naturalWidth > 0
            ? { src: img.src.slice(0, 5), width: img.naturalWidth, height: img.naturalHeight }
            : null,
        ),
    );
    check(preview.src === 'blob:', `the preview is a decrypted blob: ${JSON.stringify(preview)}`);
    check(
      preview.width === 192 && preview.height === 108,
      `the preview has the video's frame size: ${JSON.stringify(preview)}`,
    );
    const red = await play.locator('img').evaluate((img) => {
      const canvas = document.createElement('canvas');
      [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
      const context = canvas.getContext('2d');
      context.drawImage(img, 0, 0);
      const [r, g, b] = context.getImageData(96, 54, 1, 1).data;
      return r > 150 && g < 80 && b < 80;
    });
    check(red, 'the preview shows the video’s first frame (red)');
    await play.click();
    const player = row.locator('video');
    await visible(player);
    const state = await until('the video to load', () =>
      player.evaluate((element) =>
        element.readyState >= 1
          ? {
              src: element.src.slice(0, 5),
              poster: element.poster.slice(0, 5),
              width: element.videoWidth,
            }
          : null,
      ),
    );
    run.data.video = { bytes: video.length, preview, player: state };
    check(
      state.src === 'blob:' && state.poster === 'blob:' && state.width === 192,
      `played from a decrypted blob with the preview as its poster: ${JSON.stringify(state)}`,
    );
  });

  await run.step(
    'the chat is accessible with real messages, a photo and a video; screenshots',
    async () => {
      await accessible(run, alice.page, 'conversation (desktop)');
      await accessible(run, bob.page, 'conversation (phone)');
      await run.screenshot(alice.page, 'conversation-desktop');
      await run.screenshot(bob.page, 'conversation-phone');
    },
  );

  await run.step('the server holds only ciphertext', async () => {
    const session = await api.login(run.baseUrl, aliceAccount.email);
    const page = await api.call(run.baseUrl, 'GET', `/chats/${chatId}/messages?limit=50`, {
      token: session.access_token,
    });
    check(page.items.length === 4, `four messages: ${page.items.length}`);
    for (const message of page.items) {
      const stored = Buffer.from(message.ciphertext ?? '', 'base64').toString('latin1');
      check(message.algorithm === 'parley.megolm.v1', `Megolm: ${message.algorithm}`);
      for (const plain of [hello, reply, 'the beach', 'beach.png', 'the waves', 'waves.webm']) {
        check(!stored.includes(plain), `the server stores ${JSON.stringify(plain)} in the clear`);
      }
    }
  });
}
