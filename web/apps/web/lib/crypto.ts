/**
 * Every piece of end-to-end encryption the web app needs, behind one interface, implemented on
 * the WebAssembly client core (`@parley/core`, the browser build of `parley-client-core`, the
 * same code the `parley` CLI runs), so the two interoperate.
 *
 * The core is sans-IO: this module holds this device's `Device`, persists it through a
 * {@link DeviceVault} (IndexedDB, the state key wrapped by a non-extractable WebCrypto key) and
 * turns the core's JSON strings into typed values; the HTTP around it is `lib/e2ee.ts`. Shapes
 * follow `docs/e2ee.md`. Ids are lowercase hyphenated UUIDs.
 *
 * Every call runs after the previous one finished (one queue), so a save always captures a
 * state no other call is halfway through.
 */
import type {
  AttachmentInfoJson,
  DecryptedMessageJson,
  DeviceKeysJson,
  DeviceListReportJson,
  EncryptedAttachmentKeysJson,
  EncryptedMessageJson,
  KnownDeviceJson,
  MessageContentJson,
  RoomKeyShareJson,
  SafetyNumberJson,
  SendPreparationJson,
  ToDeviceEventJson,
  TrustStoreJson,
} from '@parley/core';
import type {
  ClaimedKey,
  DeviceRef,
  MessageView,
  PublishKeysRequest,
  PublishKeysResponse,
  ToDeviceMessage,
  UserDevices,
} from '@parley/sdk';
import type { DeviceVault } from './deviceVault';

/** `parley.megolm.v1`: chat messages. */
export const MEGOLM_ALGORITHM = 'parley.megolm.v1';

/** This device: the login session's user and `device_id` (from register/login). */
export interface DeviceContext {
  userId: string;
  deviceId: string;
}

/** An encrypted attachment's description inside a message (`docs/e2ee.md`, "Attachments"). */
export type AttachmentInfo = AttachmentInfoJson;
/** The Megolm plaintext's content (without its `chat_id`, which the core adds and checks). */
export type MessageContent = MessageContentJson;
export type DecryptedMessage = DecryptedMessageJson;
export type DeviceListReport = DeviceListReportJson;
export type SendPreparation = SendPreparationJson;
export type RoomKeyShare = RoomKeyShareJson;
export type DeviceKeys = DeviceKeysJson;

/** What goes into `POST /chats/{id}/messages` besides `client_msg_id`. */
export type EncryptedMessage = EncryptedMessageJson;

/** A decrypted to-device message. */
export interface ToDeviceEvent {
  type: 'room_key';
  chat_id: string;
  session_id: string;
  sender: DeviceRef;
}

/** A device of someone whose identity keys changed: withheld until the user accepts. */
export interface PendingKeyChange {
  user_id: string;
  device_id: string;
  display_name: string | null;
  /** The ed25519 key trusted so far. */
  trusted_ed25519: string;
  /** The ed25519 key the server now presents. */
  presented_ed25519: string;
}

/** Streams one attachment through AES-256-CTR (SHA-256 over the ciphertext). */
export interface AttachmentEncryptorLike {
  update(chunk: Uint8Array): Uint8Array;
  /** `{size, key, iv, sha256, algorithm}`; the object is spent. */
  finish(): EncryptedAttachmentKeysJson;
  free(): void;
}

/** The way back: `update`'s output is untrusted until `finish` returned. */
export interface AttachmentDecryptorLike {
  update(chunk: Uint8Array): Uint8Array;
  /** Throws (code `attachment_hash_mismatch` / `attachment_size_mismatch`) on other bytes. */
  finish(): void;
  free(): void;
}

/** The interface the app uses; `createCryptoCore` implements it on the WebAssembly core. */
export interface CryptoCore {
  /**
   * Loads the core and this device's saved state, or creates a new device (50 one-time keys
   * and a fallback key) and saves it before anything of it is published.
   */
  open(device: DeviceContext): Promise<void>;
  /** The body for `PUT /keys/devices/{device_id}`: identity keys and every unpublished key. */
  keysUpload(displayName?: string): Promise<PublishKeysRequest>;
  /**
   * After a 2xx of `PUT /keys/devices/{id}`: marks the keys published and, when the server's
   * counts call for it, generates a top-up (saved before it is returned) to upload next.
   */
  keysPublished(response: PublishKeysResponse): Promise<PublishKeysRequest | null>;
  /** After `one_time_keys.low`: new one-time keys to upload (saved first), or `null`. */
  replenishOneTimeKeys(
    remaining: number,
    hasFallbackKey: boolean,
  ): Promise<PublishKeysRequest | null>;
  /** Verifies and remembers a listing of `GET /keys/users/{id}` / `POST /keys/query`. */
  observeUserDevices(listing: UserDevices): Promise<DeviceListReport>;
  /** The user's devices of the last listing, with their trusted keys. */
  listedDevices(userId: string): Promise<DeviceRef[]>;
  /** Whether the trust store has keys for the device (else fetch its user's devices first). */
  knowsDevice(device: DeviceRef): Promise<boolean>;
  /** Every device whose keys changed and were not accepted, from the trust store. */
  pendingKeyChanges(): Promise<PendingKeyChange[]>;
  /** Adopts a device's changed keys (after the user compared safety numbers). */
  acceptKeyChange(device: DeviceRef): Promise<void>;
  /** The 60-digit safety number with another user, in 12 groups of 5. */
  safetyNumber(userId: string): Promise<string>;
  /**
   * Makes sure the chat has a current outbound Megolm session for exactly `recipients` (every
   * listed device of every member; this device is left out by the core).
   */
  prepareSend(chatId: string, recipients: DeviceRef[]): Promise<SendPreparation>;
  /** Encrypts the room key for every recipient lacking it (the claimed keys for new sessions). */
  shareRoomKey(chatId: string, claimed: ClaimedKey[]): Promise<RoomKeyShare>;
  /** Encrypts a message with the chat's current outbound session; saved before it resolves. */
  encryptMessage(chatId: string, content: MessageContent): Promise<EncryptedMessage>;
  /** Decrypts a message of the history or a `message.created` frame. */
  decryptMessage(message: MessageView): Promise<DecryptedMessage>;
  /** Decrypts and applies a to-device message; `save` before acknowledging it. */
  decryptToDevice(message: ToDeviceMessage): Promise<ToDeviceEvent>;
  /** Persists the state now. */
  save(): Promise<void>;
  attachmentEncryptor(): Promise<AttachmentEncryptorLike>;
  attachmentDecryptor(info: AttachmentInfo): Promise<AttachmentDecryptorLike>;
  /** Lets go of the device in memory (its saved state stays). */
  close(): Promise<void>;
  /** Forgets this device: memory and everything saved (logout). */
  forgetDevice(): Promise<void>;
}

/** What this module uses of `@parley/core` (after its wasm was instantiated). */
export interface CoreModule {
  Device: {
    new (userId: string, deviceId: string): CoreDevice;
    restore(bytes: Uint8Array, key: Uint8Array): CoreDevice;
  };
  AttachmentEncryptor: new () => {
    update(chunk: Uint8Array): Uint8Array;
    finish(): string;
    free(): void;
  };
  AttachmentDecryptor: new (infoJson: string) => AttachmentDecryptorLike;
}

/** The methods of the core's `Device` used here (JSON strings in and out). */
export interface CoreDevice {
  readonly userId: string;
  readonly deviceId: string;
  save(key: Uint8Array): Uint8Array;
  keysUpload(displayName?: string | null): string;
  markPublished(): void;
  replenishOneTimeKeys(count: number, hasFallbackKey: boolean): string | undefined;
  observeUserDevices(listing: string): string;
  listedDevices(userId: string): string;
  knownDevice(userId: string, deviceId: string): string | undefined;
  trustStore(): string;
  acceptKeyChange(userId: string, deviceId: string): string;
  safetyNumber(otherUserId: string): string;
  prepareSend(chatId: string, recipients: string, now: number): string;
  shareRoomKey(chatId: string, claimed: string): string;
  encryptMessage(chatId: string, content: string, now: number): string;
  decryptMessage(
    chatId: string,
    senderId: string,
    senderDeviceId: string,
    algorithm: string,
    ciphertext: string,
  ): string;
  decryptToDevice(message: string): string;
  free(): void;
}

/** An error of the core (`ParleyCoreError`), or of this module, with a stable `code`. */
export class CryptoError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CryptoError';
  }
}

/** The core's error code of `error` (`missing_room_key`, `unknown_devices`, …), if it has one. */
export function cryptoErrorCode(error: unknown): string | null {
  if (error && typeof error === 'object' && 'code' in error) {
    const { code } = error as { code: unknown };
    if (typeof code === 'string') return code;
  }
  return null;
}

/** Rethrows the core's `ParleyCoreError` as a {@link CryptoError} (same code and message). */
function asCryptoError(error: unknown): Error {
  if (error instanceof CryptoError) return error;
  const code = cryptoErrorCode(error);
  const text = error instanceof Error ? error.message : String(error);
  if (code) {
    const details = (error as { details?: unknown }).details;
    return new CryptoError(
      code,
      text,
      details && typeof details === 'object' ? (details as Record<string, unknown>) : undefined,
    );
  }
  return error instanceof Error ? error : new Error(text);
}

export interface CryptoCoreOptions {
  /** Imports `@parley/core` and instantiates its wasm (see `lib/coreLoader.ts`). */
  loadCore: () => Promise<CoreModule>;
  vault: DeviceVault;
  /** Seconds since the epoch (the core's clock for session rotation). */
  nowSecs?: () => number;
}

/** The app's crypto core on `@parley/core`. */
export function createCryptoCore(options: CryptoCoreOptions): CryptoCore {
  const nowSecs = options.nowSecs ?? (() => Date.now() / 1000);
  let core: Promise<CoreModule> | null = null;
  let device: CoreDevice | null = null;
  let stateKey: Uint8Array | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  const loaded = () =>
    (core ??= options.loadCore().catch((error: unknown) => {
      core = null;
      throw new CryptoError(
        'core_unavailable',
        `the encryption core did not load: ${error instanceof Error ? error.message : String(error)}`,
      );
    }));

  /** Runs `work` after every earlier call finished; errors come out as {@link CryptoError}s. */
  function serial<T>(work: () => T | Promise<T>): Promise<T> {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run.catch((error: unknown) => {
      throw asCryptoError(error);
    });
  }

  function current(): CoreDevice {
    if (!device) throw new CryptoError('no_device', 'no device is open');
    return device;
  }

  async function persist(): Promise<void> {
    const open = current();
    if (!stateKey) throw new CryptoError('no_device', 'no device is open');
    await options.vault.save(open.save(stateKey));
  }

  function parse<T>(json: string): T {
    return JSON.parse(json) as T;
  }

  return {
    open: ({ userId, deviceId }) =>
      serial(async () => {
        const loadedCore = await loaded();
        if (device?.userId === userId && device.deviceId === deviceId) return;
        device?.free();
        device = null;
        const opened = await options.vault.open(userId, deviceId);
        if (opened.state) {
          try {
            device = loadedCore.Device.restore(opened.state, opened.stateKey);
          } catch (error) {
            throw new CryptoError(
              'state_decryption',
              `this device's saved keys could not be read (${asCryptoError(error).message}); sign out and in again`,
            );
          }
          if (device.userId !== userId || device.deviceId !== deviceId) {
            device.free();
            device = null;
            throw new CryptoError('state_mismatch', 'the saved keys belong to another device');
          }
        } else {
          device = new loadedCore.Device(userId, deviceId);
        }
        stateKey = opened.stateKey;
        // A new device is saved before its keys are published: the server never holds a key
        // whose private part this browser could lose.
        if (!opened.state) await persist();
      }),

    keysUpload: (displayName) =>
      serial(() => parse<PublishKeysRequest>(current().keysUpload(displayName ?? null))),

    keysPublished: (response) =>
      serial(async () => {
        const open = current();
        open.markPublished();
        const topUp = open.replenishOneTimeKeys(
          response.one_time_key_count,
          response.has_fallback_key,
        );
        await persist();
        return topUp ? parse<PublishKeysRequest>(topUp) : null;
      }),

    replenishOneTimeKeys: (remaining, hasFallbackKey) =>
      serial(async () => {
        const topUp = current().replenishOneTimeKeys(remaining, hasFallbackKey);
        if (!topUp) return null;
        await persist();
        return parse<PublishKeysRequest>(topUp);
      }),

    observeUserDevices: (listing) =>
      serial(async () => {
        const report = parse<DeviceListReport>(
          current().observeUserDevices(JSON.stringify(listing)),
        );
        const changed =
          report.new_devices.length + report.removed_devices.length + report.key_changes.length;
        if (changed > 0) await persist();
        return report;
      }),

    listedDevices: (userId) =>
      serial(() =>
        parse<DeviceKeysJson[]>(current().listedDevices(userId)).map((keys) => ({
          user_id: keys.user_id,
          device_id: keys.device_id,
        })),
      ),

    knowsDevice: ({ user_id, device_id }) =>
      serial(() => current().knownDevice(user_id, device_id) !== undefined),

    pendingKeyChanges: () =>
      serial(() =>
        parse<TrustStoreJson>(current().trustStore())
          .devices.filter(
            (known): known is KnownDeviceJson & { pending_key_change: DeviceKeysJson } =>
              known.pending_key_change !== null,
          )
          .map((known) => ({
            user_id: known.keys.user_id,
            device_id: known.keys.device_id,
            display_name: known.display_name,
            trusted_ed25519: known.keys.ed25519,
            presented_ed25519: known.pending_key_change.ed25519,
          })),
      ),

    acceptKeyChange: ({ user_id, device_id }) =>
      serial(async () => {
        current().acceptKeyChange(user_id, device_id);
        await persist();
      }),

    safetyNumber: (userId) =>
      serial(() => parse<SafetyNumberJson>(current().safetyNumber(userId)).grouped),

    prepareSend: (chatId, recipients) =>
      serial(async () => {
        const preparation = parse<SendPreparation>(
          current().prepareSend(chatId, JSON.stringify(recipients), nowSecs()),
        );
        if (preparation.rotated) await persist();
        return preparation;
      }),

    shareRoomKey: (chatId, claimed) =>
      serial(async () => {
        const share = parse<RoomKeyShare>(current().shareRoomKey(chatId, JSON.stringify(claimed)));
        // The Olm sessions just made are kept before their messages leave.
        await persist();
        return share;
      }),

    encryptMessage: (chatId, content) =>
      serial(async () => {
        const encrypted = parse<EncryptedMessage>(
          current().encryptMessage(chatId, JSON.stringify(content), nowSecs()),
        );
        // Saved before the message is sent: a message index is never used twice, even if the
        // page dies right after.
        await persist();
        return encrypted;
      }),

    decryptMessage: (message) =>
      serial(() => {
        if (message.deleted || message.ciphertext == null) {
          throw new CryptoError('deleted', 'the message was deleted');
        }
        if (!message.sender_device_id) {
          throw new CryptoError(
            'no_sender_device',
            'sent before devices existed (no sender device)',
          );
        }
        return parse<DecryptedMessage>(
          current().decryptMessage(
            message.chat_id,
            message.sender_id,
            message.sender_device_id,
            message.algorithm,
            message.ciphertext,
          ),
        );
      }),

    decryptToDevice: (message) =>
      serial(() => {
        const event = parse<ToDeviceEventJson>(
          current().decryptToDevice(
            JSON.stringify({
              id: message.id,
              sender_id: message.sender_id,
              sender_device_id: message.sender_device_id,
              ciphertext: message.ciphertext,
            }),
          ),
        );
        const { chat_id, session_id, sender } = event.RoomKey;
        return { type: 'room_key' as const, chat_id, session_id, sender };
      }),

    save: () => serial(persist),

    attachmentEncryptor: async () => {
      const loadedCore = await loaded();
      const encryptor = new loadedCore.AttachmentEncryptor();
      return {
        update: (chunk) => encryptor.update(chunk),
        finish: () => parse<EncryptedAttachmentKeysJson>(encryptor.finish()),
        free: () => encryptor.free(),
      };
    },

    attachmentDecryptor: async (info) => {
      const loadedCore = await loaded();
      try {
        return new loadedCore.AttachmentDecryptor(JSON.stringify(info));
      } catch (error) {
        throw asCryptoError(error);
      }
    },

    close: () =>
      serial(() => {
        device?.free();
        device = null;
        stateKey = null;
      }),

    forgetDevice: () =>
      serial(async () => {
        device?.free();
        device = null;
        stateKey?.fill(0);
        stateKey = null;
        await options.vault.wipe();
      }),
  };
}
