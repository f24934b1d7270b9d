// A group in three browsers: Alice makes a group with Bob and they write (encrypted); Alice
// deletes one of her messages for everyone and both see only that it was deleted; Alice makes an
// invite link in the group's info; Carol, who registered elsewhere, opens it, joins, and cannot
// read what was written before she came, while what comes after reaches her decrypted.
import { randomUUID } from 'node:crypto';
import * as api from '../lib/api.mjs';
import {
  accessible,
  chatLink,
  createGroup,
  gone,
  register,
  rows,
  rowWith,
  sendText,
  until,
  visible,
} from '../lib/app.mjs';
import { check, DESKTOP, PHONE } from '../lib/browser.mjs';

export default async function groupInvite(run) {
  const tag = randomUUID().slice(0, 4);
  const account = (name) => ({
    name: `${name} ${tag}`,
    email: api.uniqueEmail(name),
    password: api.PASSWORD,
  });
  const [aliceAccount, bobAccount, carolAccount] = [
    account('Alice'),
    account('Bob'),
    account('Carol'),
  ];
  const alice = await run.newPerson('alice', DESKTOP);
  const bob = await run.newPerson('bob', DESKTOP);
  const carol = await run.newPerson('carol', PHONE);
  const group = `Team ${tag}`;
  const before = `Before Carol came ${tag}`;
  const takeBack = `A message to take back ${tag}`;
  const after = `Welcome Carol ${tag}`;
  const fromBob = `Hello from Bob ${tag}`;

  await run.step('Alice and Bob register; Alice makes a group with Bob', async () => {
    await Promise.all([
      register(run, alice.page, aliceAccount),
      register(run, bob.page, bobAccount),
    ]);
    const chatId = await createGroup(run, alice.page, group, [bobAccount.name]);
    run.data.chat_id = chatId;
  });

  await run.step('they write in the group; Bob reads Alice’s messages decrypted', async () => {
    await sendText(alice.page, before);
    await sendText(alice.page, takeBack);
    await chatLink(bob.page, group).click();
    await visible(rowWith(bob.page, group, before));
    await visible(rowWith(bob.page, group, takeBack));
  });

  await run.step('Alice deletes a message for everyone; both see that it was deleted', async () => {
    const row = rowWith(alice.page, group, takeBack);
    await row.hover();
    await row.getByRole('button', { name: /^Options for the message from you\b/ }).click();
    const dialog = alice.page.getByRole('dialog', { name: 'Delete message?' });
    await visible(dialog);
    await accessible(run, alice.page, 'delete dialog (desktop)');
    await dialog.getByRole('button', { name: 'Delete for everyone' }).click();
    await gone(dialog);
    for (const person of [alice, bob]) {
      await gone(rowWith(person.page, group, takeBack));
      await visible(rowWith(person.page, group, 'Message deleted'));
    }
    await visible(rowWith(bob.page, group, before));
  });

  let link;
  await run.step('Alice makes an invite link in the group’s info', async () => {
    // The chat's heading is the link to its info.
    await alice.page
      .getByRole('main')
      .getByRole('link', { name: new RegExp(`^${group}\\b.*\\bGroup info$`) })
      .click();
    await visible(alice.page.getByRole('heading', { name: 'Invite link' }));
    await alice.page.getByRole('button', { name: 'Create invite link' }).click();
    const field = alice.page.getByRole('textbox', { name: 'Link' });
    await visible(field);
    link = await field.inputValue();
    run.data.invite_link = link.replace(/code=.*/, 'code=…');
    check(link.startsWith(run.baseUrl), `an invite link on our origin: ${link}`);
    await accessible(run, alice.page, 'group info (desktop)');
    await run.screenshot(alice.page, 'group-info-desktop');
    await alice.page.goBack();
  });

  await run.step('Alice makes Bob an admin; his group info turns into an admin’s', async () => {
    const info = (page) =>
      page
        .getByRole('main')
        .getByRole('link', { name: new RegExp(`^${group}\\b.*\\bGroup info$`) });
    await info(alice.page).click();
    const members = alice.page.getByRole('list', { name: /^Members/ });
    await members
      .getByRole('button', { name: new RegExp(`^Make admin\\W+${bobAccount.name}$`) })
      .click();
    await visible(
      members.getByRole('button', { name: new RegExp(`^Dismiss as admin\\W+${bobAccount.name}$`) }),
    );
    await alice.page.goBack();
    await info(bob.page).click();
    await visible(bob.page.getByRole('heading', { name: 'Add members' }));
    await visible(bob.page.getByRole('heading', { name: 'Invite link' }));
    await accessible(run, bob.page, 'group info as a new admin (desktop)');
    await bob.page.goBack();
  });

  await run.step('Carol registers, opens the link and lands in the group', async () => {
    await register(run, carol.page, carolAccount);
    await carol.page.goto(link);
    await carol.page.waitForURL(/\/app\/chat\/\?id=/);
    await visible(carol.page.getByRole('heading', { level: 2, name: group }));
    await accessible(run, carol.page, 'group chat after joining (phone)');
  });

  await run.step('Carol cannot read what came before she joined', async () => {
    // Whatever her list shows of the earlier history, none of it is readable to her.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    check(
      (await carol.page.getByText(before).count()) === 0,
      'Carol reads a message from before she joined',
    );
    run.data.carol_rows_before = await rows(carol.page, group).count();
  });

  await run.step('what Alice and Bob write after she joined reaches Carol decrypted', async () => {
    await sendText(alice.page, after);
    await sendText(bob.page, fromBob);
    await visible(rowWith(carol.page, group, after));
    await visible(rowWith(carol.page, group, fromBob));
    await until(
      'Carol still not reading the earlier message',
      async () => (await carol.page.getByText(before).count()) === 0,
    );
    await run.screenshot(carol.page, 'group-phone');
  });
}
