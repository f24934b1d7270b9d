// A sender that encrypts for real, in Node, with the client core the browser runs (@parley/core's
// wasm): it publishes its device keys, reads the recipients' device lists, shares Megolm room keys
// over Olm (`POST /to-device`) whenever the core asks for a new one, and sends Megolm ciphertext.
// The same steps as the web app's lib/e2ee.ts and the CLI's cli/src/e2ee.rs, minus the UI.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Device, initSync } from '@parley/core';
import { call } from './api.mjs';

const require = createRequire(import.meta.url);
let coreReady = false;

function initCore() {
  if (coreReady) return;
  initSync({ module: readFileSync(require.resolve('@parley/core/parley_core_bg.wasm')) });
  coreReady = true;
}

const now = () => Math.floor(Date.now() / 1000);

export class EncryptingSender {
  /** `auth`: a register/login answer (`user`, `device_id`, `access_token`). */
  constructor(baseUrl, auth) {
    initCore();
    this.baseUrl = baseUrl;
    this.token = auth.access_token;
    this.userId = auth.user.id;
    this.deviceId = auth.device_id;
    this.device = new Device(this.userId, this.deviceId);
    this.roomKeysShared = 0;
  }

  api(method, path, json) {
    return call(this.baseUrl, method, path, { token: this.token, json });
  }

  async publishKeys() {
    const upload = JSON.parse(this.device.keysUpload('benchmark sender'));
    await this.api('PUT', `/keys/devices/${this.deviceId}`, upload);
    this.device.markPublished();
  }

  /** Reads `userIds`' device lists into the trust store; every listed device of them. */
  async devicesOf(userIds) {
    const answer = await this.api('POST', '/keys/query', { user_ids: userIds });
    for (const listing of answer.users) this.device.observeUserDevices(JSON.stringify(listing));
    return userIds.flatMap((userId) =>
      JSON.parse(this.device.listedDevices(userId)).map((d) => ({
        user_id: d.user_id ?? userId,
        device_id: d.device_id,
      })),
    );
  }

  /** Encrypts `body` for `recipients` (device addresses) and posts it to the chat. */
  async sendText(chatId, recipients, body) {
    const plan = JSON.parse(this.device.prepareSend(chatId, JSON.stringify(recipients), now()));
    if (plan.needs_room_key.length > 0 || plan.needs_one_time_key.length > 0) {
      const claimed =
        plan.needs_one_time_key.length > 0
          ? await this.api('POST', '/keys/claim', { devices: plan.needs_one_time_key })
          : { keys: [] };
      const share = JSON.parse(this.device.shareRoomKey(chatId, JSON.stringify(claimed)));
      if (share.messages.length > 0) {
        await this.api('POST', '/to-device', { messages: share.messages });
        this.roomKeysShared += share.messages.length;
      }
    }
    const encrypted = JSON.parse(
      this.device.encryptMessage(chatId, JSON.stringify({ type: 'text', body }), now()),
    );
    return this.api('POST', `/chats/${chatId}/messages`, {
      client_msg_id: randomUUID(),
      ...encrypted,
    });
  }
}
