/**
 * A stand-in for the WebAssembly core, recording what the controller asks of it. Its
 * "ciphertext" is base64 JSON: tests check the flows around the crypto, not the crypto (the real
 * core is tested in `e2ee.test.ts`).
 */
import type { MessageView } from '@parley/sdk';
import {
  CryptoError,
  type CryptoCore,
  type MessageContent,
  type PendingKeyChange,
} from '../crypto';

export interface FakeCore extends CryptoCore {
  log: string[];
  /** Message ids whose room key has not arrived. */
  missingKeys: Set<string>;
  keyChanges: PendingKeyChange[];
  /** The Megolm message index a message decrypts to (default: its `seq`). */
  messageIndex: (message: MessageView) => number;
}

export function fakeCore(options: { failOpen?: string } = {}): FakeCore {
  const log: string[] = [];
  const missingKeys = new Set<string>();
  const core: FakeCore = {
    log,
    missingKeys,
    keyChanges: [],
    messageIndex: (m) => m.seq,
    open: async ({ deviceId }) => {
      log.push(`open ${deviceId}`);
      if (options.failOpen) throw new CryptoError('core_unavailable', options.failOpen);
    },
    keysUpload: async () => ({ identity_keys: { curve25519: 'c', ed25519: 'e', signature: 's' } }),
    keysPublished: async () => {
      log.push('published');
      return null;
    },
    replenishOneTimeKeys: async (remaining) => {
      log.push(`replenish ${remaining}`);
      return { identity_keys: { curve25519: 'c', ed25519: 'e', signature: 's' } };
    },
    observeUserDevices: async (listing) => {
      log.push(`observe ${listing.user_id}`);
      return { new_devices: [], removed_devices: [], key_changes: [], rejected_devices: [] };
    },
    listedDevices: async (userId) => [{ user_id: userId, device_id: `dev-of-${userId}` }],
    knowsDevice: async () => true,
    pendingKeyChanges: async () => core.keyChanges,
    acceptKeyChange: async ({ user_id, device_id }) => {
      log.push(`accept ${user_id}/${device_id}`);
      core.keyChanges = core.keyChanges.filter(
        (c) => c.user_id !== user_id || c.device_id !== device_id,
      );
    },
    safetyNumber: async () => '12345 67890',
    prepareSend: async (chatId, recipients) => {
      log.push(`prepare ${chatId} for ${recipients.length}`);
      return {
        session_id: 's',
        rotated: true,
        needs_room_key: recipients,
        needs_one_time_key: recipients,
        withheld: [],
      };
    },
    shareRoomKey: async (chatId, claimed) => {
      log.push(`share ${chatId} with ${claimed.length}`);
      return {
        messages: claimed.map((key) => ({
          user_id: key.user_id,
          device_id: key.device_id,
          ciphertext: '{"algorithm":"parley.olm.v1"}',
        })),
        devices_without_one_time_key: [],
        rejected_one_time_keys: [],
        withheld: [],
      };
    },
    encryptMessage: async (chatId, content) => {
      log.push(`encrypt ${chatId}`);
      return { algorithm: 'parley.megolm.v1', ciphertext: btoa(JSON.stringify(content)) };
    },
    decryptMessage: async (m) => {
      if (!m.ciphertext) throw new CryptoError('deleted', 'no ciphertext');
      if (missingKeys.has(m.id)) {
        throw new CryptoError('missing_room_key', 'no room key for this session');
      }
      let content: MessageContent = { type: 'text', body: `plain ${m.seq}` };
      try {
        const parsed = JSON.parse(atob(m.ciphertext)) as MessageContent;
        if (parsed && typeof parsed === 'object' && 'type' in parsed) content = parsed;
      } catch {
        // Fixture ciphertexts are not JSON: they read as `plain <seq>`.
      }
      return { content, session_id: 's', message_index: core.messageIndex(m) };
    },
    decryptToDevice: async (m) => {
      log.push(`to-device ${m.id}`);
      return {
        type: 'room_key',
        chat_id: '00000000-0000-4000-8000-0000000000c1',
        session_id: 's',
        sender: { user_id: m.sender_id, device_id: m.sender_device_id },
      };
    },
    save: async () => {
      log.push('save');
    },
    attachmentEncryptor: async () => ({
      // XOR with 0x5a: reversible, and visibly not the plaintext.
      update: (chunk) => chunk.map((byte) => byte ^ 0x5a),
      finish: () => ({
        size: 0,
        key: 'k',
        iv: 'i',
        sha256: 'h',
        algorithm: 'parley.aes-ctr-256.v1',
      }),
      free: () => undefined,
    }),
    attachmentDecryptor: async () => ({
      update: (chunk) => chunk.map((byte) => byte ^ 0x5a),
      finish: () => undefined,
      free: () => undefined,
    }),
    close: async () => {
      log.push('close');
    },
    forgetDevice: async () => {
      log.push('forget');
    },
  };
  return core;
}
