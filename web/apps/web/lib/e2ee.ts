/**
 * The end-to-end encryption flows over HTTP, on the crypto core: publishing keys, keeping the
 * trust store current, receiving room keys, sending encrypted messages. The same steps, in the
 * same order, as the `parley` CLI (`cli/src/e2ee.rs`), so the two interoperate:
 *
 * - sending: take waiting room keys, read the chat's members, re-read their device lists
 *   (`POST /keys/query`, per user on 404), `prepareSend` over every listed device of every member
 *   (this user's other devices included), claim one-time keys for new Olm sessions, share the
 *   room key (`POST /to-device`), encrypt, **save**, then `POST /chats/{id}/messages`;
 * - receiving: fetch an unknown sender's devices, decrypt, **save**, then acknowledge.
 *
 * Flows that change the device's state run one after another (one queue), so a send never
 * interleaves with another send or with room keys being applied.
 */
import {
  errorDetail,
  type ClaimedKey,
  type DeviceRef,
  type MessageView,
  type ParleyClient,
  type ToDeviceMessage,
  type UserDevices,
} from '@parley/sdk';
import {
  cryptoErrorCode,
  type CryptoCore,
  type DeviceListReport,
  type MessageContent,
} from './crypto';

/** `GET /to-device` page size (the server's maximum is 1,000). */
const TO_DEVICE_PAGE = 500;
/** To-device ids remembered as handled (their frames may come again after a reconnect). */
const HANDLED_MEMORY = 2000;

/** What the flows tell the app. */
export interface E2eeListener {
  /** A device listing was read (new, removed, changed or refused devices). */
  onDeviceReport?(userId: string, report: DeviceListReport): void;
  /** A room key for the chat arrived: its undecryptable messages may decrypt now. */
  onRoomKey?(chatId: string): void;
  /** Something the user should know, about one chat or (`null`) in general. */
  onWarning?(chatId: string | null, text: string): void;
}

/** An HTTP answer that was not a success, with its status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function failed(error: unknown, response: Response): ApiError {
  const detail = errorDetail(error, response.status);
  return new ApiError(response.status, detail.code, detail.message);
}

function short(id: string): string {
  return id.slice(0, 8);
}

export interface E2eeOptions {
  client: ParleyClient;
  core: CryptoCore;
  listener?: E2eeListener;
  /** A person's display name for warnings. */
  nameOf?: (userId: string) => string;
}

export class E2ee {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly handled = new Set<string>();
  /** `to_device` frames not handled yet, and the task that will handle them. */
  private readonly arrived: ToDeviceMessage[] = [];
  private arrivedBatch: Promise<void> | null = null;
  private readonly client: ParleyClient;
  private readonly core: CryptoCore;
  private readonly listener: E2eeListener;
  private readonly nameOf: (userId: string) => string;

  constructor(options: E2eeOptions) {
    this.client = options.client;
    this.core = options.core;
    this.listener = options.listener ?? {};
    this.nameOf = options.nameOf ?? (() => 'someone');
  }

  /** Runs `work` after every earlier flow finished. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private warn(chatId: string | null, text: string) {
    this.listener.onWarning?.(chatId, text);
  }

  // --- keys ------------------------------------------------------------------------------------

  /**
   * Publishes this device's keys (identity keys and every key not published yet) and tops the
   * one-time keys up when the server's answer says they run low. Run at every start: the same
   * identity keys are accepted again, and the answer tells the server's key stock.
   */
  publishKeys(deviceId: string, displayName?: string): Promise<void> {
    return this.serial(async () => {
      let upload: Awaited<ReturnType<CryptoCore['keysPublished']>> =
        await this.core.keysUpload(displayName);
      while (upload) {
        const { data, error, response } = await this.client.PUT('/keys/devices/{device_id}', {
          params: { path: { device_id: deviceId } },
          body: upload,
        });
        if (!data) throw failed(error, response);
        upload = await this.core.keysPublished(data);
      }
    });
  }

  /** After `one_time_keys.low`: uploads new one-time keys. */
  replenish(deviceId: string, remaining: number): Promise<void> {
    return this.serial(async () => {
      let upload = await this.core.replenishOneTimeKeys(remaining, true);
      while (upload) {
        const { data, error, response } = await this.client.PUT('/keys/devices/{device_id}', {
          params: { path: { device_id: deviceId } },
          body: upload,
        });
        if (!data) throw failed(error, response);
        upload = await this.core.keysPublished(data);
      }
    });
  }

  // --- device lists ------------------------------------------------------------------------------

  /**
   * The device listings of `users`. `POST /keys/query` refuses the whole batch (404) when one
   * user is not visible; then each is asked alone and the invisible ones are left out.
   */
  private async fetchDevices(users: string[]): Promise<UserDevices[]> {
    if (users.length === 0) return [];
    const { data, error, response } = await this.client.POST('/keys/query', {
      body: { user_ids: users },
    });
    if (data) return data.users;
    if (response.status !== 404) throw failed(error, response);
    const listings: UserDevices[] = [];
    for (const user of users) {
      const one = await this.client.GET('/keys/users/{user_id}', {
        params: { path: { user_id: user } },
      });
      if (one.data) listings.push(one.data);
      else if (one.response.status !== 404) throw failed(one.error, one.response);
    }
    return listings;
  }

  /** Re-reads the device lists of `users` into the trust store (trust on first use). */
  private async syncDevicesNow(users: string[]): Promise<void> {
    const listings = await this.fetchDevices([...new Set(users)]);
    for (const listing of listings) {
      const report = await this.core.observeUserDevices(listing);
      this.listener.onDeviceReport?.(listing.user_id, report);
      for (const rejected of report.rejected_devices) {
        this.warn(
          null,
          `A device of ${this.nameOf(rejected.device.user_id)} (${short(rejected.device.device_id)}) was refused: ${rejected.reason}.`,
        );
      }
    }
  }

  /** `device_list.changed`, or a chat opened: re-read these users' devices. */
  syncDevices(users: string[]): Promise<void> {
    return this.serial(() => this.syncDevicesNow(users));
  }

  // --- to-device messages ------------------------------------------------------------------------

  /**
   * Decrypts one to-device message. `true` when it is done with (acknowledge it), `false` when
   * it must stay queued (its sender's key change is not accepted).
   */
  private async handleToDevice(message: ToDeviceMessage): Promise<boolean> {
    if (this.handled.has(message.id)) return true;
    const sender: DeviceRef = { user_id: message.sender_id, device_id: message.sender_device_id };
    if (!(await this.core.knowsDevice(sender))) await this.syncDevicesNow([message.sender_id]);
    try {
      const event = await this.core.decryptToDevice(message);
      this.listener.onRoomKey?.(event.chat_id);
      return true;
    } catch (error) {
      if (cryptoErrorCode(error) === 'unresolved_key_change') {
        this.warn(
          null,
          `Keys from ${this.nameOf(message.sender_id)}'s device ${short(message.sender_device_id)} are kept unread until its key change is accepted.`,
        );
        return false;
      }
      // Never decryptable (a replay, a broken or forged message): dropped, as the CLI does.
      console.warn(
        `parley: dropped an undecryptable to-device message from ${message.sender_id}/${message.sender_device_id}:`,
        error,
      );
      return true;
    }
  }

  private remember(ids: string[]) {
    for (const id of ids) this.handled.add(id);
    while (this.handled.size > HANDLED_MEMORY) {
      const oldest = this.handled.values().next().value;
      if (oldest === undefined) break;
      this.handled.delete(oldest);
    }
  }

  private async acknowledge(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    // The keys are saved before the server forgets the messages that carried them.
    await this.core.save();
    this.remember(ids);
    const { error, response } = await this.client.POST('/to-device/ack', { body: { ids } });
    if (!response.ok) throw failed(error, response);
  }

  /**
   * A `to_device` frame: decrypt, save, acknowledge. Frames that arrive while one is handled
   * (the queue a socket delivers when it opens) are handled together, with one save and one
   * acknowledgement for all of them.
   */
  receiveToDevice(message: ToDeviceMessage): Promise<void> {
    this.arrived.push(message);
    this.arrivedBatch ??= this.serial(async () => {
      this.arrivedBatch = null;
      const batch = this.arrived.splice(0);
      const done: string[] = [];
      for (const one of batch) {
        // One that fails (the network) stays queued on the server for the next drain.
        if (await this.handleToDevice(one).catch(() => false)) done.push(one.id);
      }
      await this.acknowledge(done);
    });
    return this.arrivedBatch;
  }

  private async drainNow(): Promise<void> {
    for (;;) {
      const { data, error, response } = await this.client.GET('/to-device', {
        params: { query: { limit: TO_DEVICE_PAGE } },
      });
      if (!data) throw failed(error, response);
      const done: string[] = [];
      for (const message of data.items) {
        if (await this.handleToDevice(message)) done.push(message.id);
      }
      await this.acknowledge(done);
      if (data.items.length < TO_DEVICE_PAGE || done.length === 0) return;
    }
  }

  /** Takes every waiting to-device message (after a (re)connect, or to find a missing key). */
  drainToDevice(): Promise<void> {
    return this.serial(() => this.drainNow());
  }

  // --- sending -----------------------------------------------------------------------------------

  private async claim(devices: DeviceRef[]): Promise<ClaimedKey[]> {
    if (devices.length === 0) return [];
    const { data, error, response } = await this.client.POST('/keys/claim', { body: { devices } });
    if (!data) throw failed(error, response);
    return data.keys;
  }

  /**
   * Encrypts `content` for every trusted device of every member of the chat and sends it.
   * A new room key is shared first whenever the recipient devices changed (or after 100
   * messages or a week).
   */
  sendContent(
    chatId: string,
    me: string,
    content: MessageContent,
    clientMsgId: string,
    mediaIds: string[] = [],
  ): Promise<MessageView> {
    return this.serial(async () => {
      await this.drainNow();
      const chat = await this.client.GET('/chats/{id}', { params: { path: { id: chatId } } });
      if (!chat.data) throw failed(chat.error, chat.response);
      const members = chat.data.members.map((member) => member.user_id);
      if (!members.includes(me)) members.push(me);
      await this.syncDevicesNow(members);
      const recipients: DeviceRef[] = [];
      for (const member of members) recipients.push(...(await this.core.listedDevices(member)));

      const preparation = await this.core.prepareSend(chatId, recipients);
      const withheld = new Map(
        preparation.withheld.map((device) => [`${device.user_id}/${device.device_id}`, device]),
      );
      const claimed = await this.claim(preparation.needs_one_time_key);
      const share = await this.core.shareRoomKey(chatId, claimed);
      for (const device of share.devices_without_one_time_key) {
        this.warn(
          chatId,
          `${this.nameOf(device.user_id)}'s device ${short(device.device_id)} has no one-time keys left: it cannot read this message.`,
        );
      }
      for (const [device, reason] of share.rejected_one_time_keys) {
        this.warn(
          chatId,
          `Refused a one-time key of ${this.nameOf(device.user_id)}'s device ${short(device.device_id)}: ${reason}.`,
        );
      }
      for (const device of share.withheld)
        withheld.set(`${device.user_id}/${device.device_id}`, device);
      for (const device of withheld.values()) {
        this.warn(
          chatId,
          `Not encrypting to ${this.nameOf(device.user_id)}'s device ${short(device.device_id)}: its keys changed.`,
        );
      }
      if (share.messages.length > 0) {
        const sent = await this.client.POST('/to-device', {
          body: { messages: share.messages },
        });
        if (!sent.data) throw failed(sent.error, sent.response);
      }
      const encrypted = await this.core.encryptMessage(chatId, content);
      const { data, error, response } = await this.client.POST('/chats/{id}/messages', {
        params: { path: { id: chatId } },
        body: {
          client_msg_id: clientMsgId,
          ...encrypted,
          ...(mediaIds.length > 0 ? { media_ids: mediaIds } : {}),
        },
      });
      if (!data) throw failed(error, response);
      return data;
    });
  }
}
