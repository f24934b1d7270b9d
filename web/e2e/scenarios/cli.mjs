// A browser and the `parley` terminal client in one encrypted chat: Dana in the browser starts a
// chat with Carl, who uses the CLI; each decrypts the other's messages and photos (the CLI's
// download is verified against the sender's hash and compared byte for byte).
//
//   args: parley=<path of the parley binary> home=<empty directory for the CLI's state>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as api from '../lib/api.mjs';
import { register, rowWith, sendText, startDirectChat, visible } from '../lib/app.mjs';
import { check, DESKTOP } from '../lib/browser.mjs';
import { Cli } from '../lib/cli.mjs';
import { png } from '../lib/files.mjs';
import { shownPhoto } from './conversation.mjs';

export default async function cli(run) {
  const { parley, home } = run.args;
  check(parley && home, 'usage: cli parley=<binary> home=<directory>');
  const terminal = new Cli(parley, home, run.baseUrl);
  const tag = randomUUID().slice(0, 4);
  const carlName = `Carl ${tag}`;
  const danaAccount = {
    name: `Dana ${tag}`,
    email: api.uniqueEmail('dana'),
    password: api.PASSWORD,
  };
  const dana = await run.newPerson('dana', DESKTOP);
  const fromBrowser = `hello ${carlName}, from the browser`;
  const fromTerminal = `hello ${danaAccount.name}, from the terminal`;

  await run.step('Carl registers with the CLI, Dana in the browser', async () => {
    await terminal.run('carl', [
      'register',
      carlName,
      api.uniqueEmail('carl'),
      '--device-name',
      'terminal',
    ]);
    await register(run, dana.page, danaAccount);
  });

  let chatId;
  await run.step('Dana starts a chat with Carl and writes; the CLI decrypts it', async () => {
    chatId = await startDirectChat(run, dana.page, carlName);
    await sendText(dana.page, fromBrowser);
    await terminal.readUntil('carl', chatId, 'the browser’s message', (messages) =>
      messages.some((m) => m.type === 'text' && m.body === fromBrowser),
    );
  });

  await run.step('Carl answers from the CLI; the browser decrypts it', async () => {
    await terminal.run('carl', ['send', chatId, fromTerminal]);
    await visible(rowWith(dana.page, carlName, fromTerminal));
  });

  await run.step('Carl sends a photo from the CLI; the browser decrypts and shows it', async () => {
    const path = join(home, 'terminal.png');
    writeFileSync(path, png(96, 64, 5));
    await terminal.run('carl', ['send-file', chatId, path, '--caption', 'from the terminal']);
    const shown = await shownPhoto(
      rowWith(dana.page, carlName, 'from the terminal'),
      'terminal.png',
    );
    check(
      shown.width === 96 && shown.height === 64,
      `decoded at its size: ${JSON.stringify(shown)}`,
    );
    run.data.cli_photo_in_browser = shown;
  });

  await run.step(
    'Dana sends a photo; the CLI downloads, verifies and decrypts the same bytes',
    async () => {
      const photo = png(120, 90, 7);
      await dana.page.getByRole('textbox', { name: 'Message' }).fill('from the browser');
      await dana.page.getByLabel('Photo or video to send').setInputFiles({
        name: 'browser.png',
        mimeType: 'image/png',
        buffer: photo,
      });
      const messages = await terminal.readUntil('carl', chatId, 'the browser’s photo', (all) =>
        all.some((m) => m.type === 'file' && m.body === 'from the browser'),
      );
      const sent = messages.find((m) => m.type === 'file' && m.body === 'from the browser');
      check(sent.file?.name === 'browser.png', `the file's name: ${JSON.stringify(sent)}`);
      const out = join(home, 'received.png');
      const saved = await terminal.run('carl', [
        'download',
        chatId,
        String(sent.seq),
        '--out',
        out,
      ]);
      check(saved.verified === true, `the CLI verified the download: ${JSON.stringify(saved)}`);
      check(readFileSync(out).equals(photo), 'the CLI decrypted the very bytes the browser sent');
      run.data.browser_photo_in_cli = { bytes: photo.length, verified: saved.verified };
    },
  );
}
