// The built wasm (pkg/) in Node: devices exchange keys through an in-memory key directory shaped like the
// server's REST answers, and Olm, Megolm, save/restore and attachments interoperate across devices.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  AttachmentDecryptor,
  AttachmentEncryptor,
  AttachmentVerifier,
  Device,
  initSync,
} from "../pkg/parley_core.js";

initSync({ module: readFileSync(new URL("../pkg/parley_core_bg.wasm", import.meta.url)) });

const now = () => Date.now() / 1000;
const address = (device) => ({ user_id: device.userId, device_id: device.deviceId });
const key = (device) => `${device.userId}/${device.deviceId}`;

/** What the server keeps per device, answering like PUT /keys/devices, GET /keys/users/{id}, POST /keys/claim. */
class KeyDirectory {
  devices = new Map();

  publish(device, displayName) {
    const upload = JSON.parse(device.keysUpload(displayName));
    const entry = this.devices.get(key(device)) ?? {
      user_id: device.userId,
      device_id: device.deviceId,
      display_name: upload.display_name ?? null,
      identity_keys: upload.identity_keys,
      one_time_keys: [],
      fallback_key: null,
    };
    assert.deepEqual(entry.identity_keys, upload.identity_keys, "identity keys never change");
    entry.one_time_keys.push(...(upload.one_time_keys ?? []));
    entry.fallback_key = upload.fallback_key ?? entry.fallback_key;
    this.devices.set(key(device), entry);
    device.markPublished();
    return upload;
  }

  listing(userId) {
    const devices = [...this.devices.values()]
      .filter((entry) => entry.user_id === userId)
      .map(({ device_id, display_name, identity_keys }) => ({ device_id, display_name, identity_keys }));
    return JSON.stringify({ user_id: userId, devices });
  }

  claim(addresses) {
    const keys = [];
    for (const { user_id, device_id } of addresses) {
      const entry = this.devices.get(`${user_id}/${device_id}`);
      if (!entry) continue;
      const oneTimeKey = entry.one_time_keys.shift();
      const claimed = oneTimeKey ?? entry.fallback_key;
      if (!claimed) continue;
      keys.push({ user_id, device_id, ...claimed, fallback: !oneTimeKey, remaining: entry.one_time_keys.length });
    }
    return JSON.stringify({ keys });
  }
}

/** A to-device message as GET /to-device delivers it: the server vouches for the sender. */
function deliver(sender, message) {
  return JSON.stringify({
    id: randomUUID(),
    sender_id: sender.userId,
    sender_device_id: sender.deviceId,
    ciphertext: message.ciphertext,
  });
}

/** Calls `fn` and returns what it threw. */
function thrown(fn) {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected an exception");
}

function world() {
  const directory = new KeyDirectory();
  const aliceId = randomUUID();
  const bobId = randomUUID();
  const alice = new Device(aliceId, randomUUID());
  const bobPhone = new Device(bobId, randomUUID());
  const bobLaptop = new Device(bobId, randomUUID());
  directory.publish(alice, "Alice's browser");
  directory.publish(bobPhone);
  directory.publish(bobLaptop);
  for (const device of [alice, bobPhone, bobLaptop]) {
    for (const user of [aliceId, bobId]) {
      const report = JSON.parse(device.observeUserDevices(directory.listing(user)));
      assert.deepEqual(report.rejected_devices, []);
      assert.deepEqual(report.key_changes, []);
    }
  }
  return { directory, alice, bobPhone, bobLaptop, chatId: randomUUID() };
}

/** prepareSend → claim → shareRoomKey, and every room key handed to its recipient. */
function sendRoomKey(sender, directory, chatId, recipients) {
  const recipientsJson = JSON.stringify(recipients.map(address));
  const preparation = JSON.parse(sender.prepareSend(chatId, recipientsJson, now()));
  const share = JSON.parse(sender.shareRoomKey(chatId, directory.claim(preparation.needs_one_time_key)));
  assert.deepEqual(share.devices_without_one_time_key, []);
  assert.deepEqual(share.rejected_one_time_keys, []);
  assert.equal(share.messages.length, preparation.needs_room_key.length);
  for (const message of share.messages) {
    const recipient = recipients.find((device) => device.deviceId === message.device_id);
    const event = JSON.parse(recipient.decryptToDevice(deliver(sender, message)));
    assert.deepEqual(event, {
      RoomKey: { chat_id: chatId, session_id: preparation.session_id, sender: address(sender) },
    });
  }
  return preparation;
}

function read(reader, chatId, sender, encrypted) {
  const decrypted = JSON.parse(
    reader.decryptMessage(chatId, sender.userId, sender.deviceId, encrypted.algorithm, encrypted.ciphertext),
  );
  return decrypted.content.body;
}

test("a room key shared by Olm lets every recipient read Megolm messages", () => {
  const { directory, alice, bobPhone, bobLaptop, chatId } = world();
  const preparation = sendRoomKey(alice, directory, chatId, [bobPhone, bobLaptop]);
  assert.equal(preparation.rotated, true);
  assert.equal(preparation.needs_one_time_key.length, 2);
  assert.ok(alice.hasOlmSession(bobPhone.userId, bobPhone.deviceId));

  const message = JSON.parse(alice.encryptMessage(chatId, JSON.stringify({ type: "text", body: "hello Bob" }), now()));
  assert.equal(message.algorithm, "parley.megolm.v1");
  assert.equal(read(bobPhone, chatId, alice, message), "hello Bob");
  assert.equal(read(bobLaptop, chatId, alice, message), "hello Bob");
  assert.equal(read(alice, chatId, alice, message), "hello Bob", "the sender reads its own history");

  // Bob answers over the Olm session Alice started: only his laptop needs a one-time key.
  const reply = sendRoomKey(bobPhone, directory, chatId, [alice, bobLaptop]);
  assert.deepEqual(reply.needs_one_time_key, [address(bobLaptop)]);
  const answer = JSON.parse(bobPhone.encryptMessage(chatId, JSON.stringify({ type: "text", body: "hi Alice" }), now()));
  assert.equal(read(alice, chatId, bobPhone, answer), "hi Alice");

  // The key is bound to the device that shared it: the message does not pass as another sender's.
  const error = thrown(() =>
    bobLaptop.decryptMessage(chatId, alice.userId, alice.deviceId, answer.algorithm, answer.ciphertext),
  );
  assert.equal(error.code, "missing_room_key", error.message);
  assert.deepEqual(error.details.sender, address(alice));

  const numbers = [alice.safetyNumber(bobPhone.userId), bobLaptop.safetyNumber(alice.userId)].map(JSON.parse);
  assert.equal(numbers[0].digits.length, 60);
  assert.deepEqual(numbers[0], numbers[1], "both sides compute the same safety number");
});

test("bad signatures are refused: on a listed device and on a claimed one-time key", () => {
  const { directory, alice, bobPhone, chatId } = world();

  // A device listed for Bob whose identity keys carry another device's signature.
  const forged = new Device(bobPhone.userId, randomUUID());
  const forgedKeys = JSON.parse(forged.keysUpload()).identity_keys;
  forgedKeys.signature = JSON.parse(bobPhone.keysUpload()).identity_keys.signature;
  const listing = JSON.parse(directory.listing(bobPhone.userId));
  listing.devices.push({ device_id: forged.deviceId, display_name: null, identity_keys: forgedKeys });
  const report = JSON.parse(alice.observeUserDevices(JSON.stringify(listing)));
  assert.deepEqual(report.new_devices, []);
  assert.equal(report.rejected_devices.length, 1);
  assert.deepEqual(report.rejected_devices[0].device, address(forged));
  assert.match(report.rejected_devices[0].reason, /bad signature/);
  assert.equal(alice.knownDevice(forged.userId, forged.deviceId), undefined, "never trusted");
  const unknown = thrown(() => alice.prepareSend(chatId, JSON.stringify([address(forged)]), now()));
  assert.equal(unknown.name, "ParleyCoreError");
  assert.equal(unknown.code, "unknown_devices");
  assert.deepEqual(unknown.details, { devices: [address(forged)] });

  // A claimed one-time key whose signature is not Bob's: Bob is not sent the room key.
  const preparation = JSON.parse(alice.prepareSend(chatId, JSON.stringify([address(bobPhone)]), now()));
  const claimed = JSON.parse(directory.claim(preparation.needs_one_time_key));
  claimed.keys[0].signature = JSON.parse(directory.claim(preparation.needs_one_time_key)).keys[0].signature;
  const share = JSON.parse(alice.shareRoomKey(chatId, JSON.stringify(claimed)));
  assert.deepEqual(share.messages, []);
  assert.equal(share.rejected_one_time_keys.length, 1);
  assert.deepEqual(share.rejected_one_time_keys[0][0], address(bobPhone));
  assert.match(share.rejected_one_time_keys[0][1], /bad signature/);
  assert.equal(alice.hasOlmSession(bobPhone.userId, bobPhone.deviceId), false);
});

test("save and restore round-trip the whole state", () => {
  const { directory, alice, bobPhone, chatId } = world();
  sendRoomKey(alice, directory, chatId, [bobPhone]);
  const stateKey = randomBytes(32);
  const saved = bobPhone.save(stateKey);
  assert.ok(saved instanceof Uint8Array);
  assert.equal(new TextDecoder().decode(saved.subarray(0, 4)), "PCS1");

  const wrongKey = thrown(() => Device.restore(saved, randomBytes(32)));
  assert.ok(wrongKey instanceof Error);
  assert.equal(wrongKey.code, "state_decryption");
  assert.equal(thrown(() => bobPhone.save(new Uint8Array(16))).code, "invalid_argument");

  const restored = Device.restore(saved, stateKey);
  assert.equal(restored.userId, bobPhone.userId);
  assert.equal(restored.deviceId, bobPhone.deviceId);
  assert.equal(restored.identityKeys(), bobPhone.identityKeys());
  assert.equal(restored.trustStore(), bobPhone.trustStore());
  const message = JSON.parse(alice.encryptMessage(chatId, JSON.stringify({ type: "text", body: "after restore" }), now()));
  assert.equal(read(restored, chatId, alice, message), "after restore");
  // The Olm session Alice started was saved too: the restored device answers over it.
  const reply = sendRoomKey(restored, directory, chatId, [alice]);
  assert.deepEqual(reply.needs_one_time_key, []);
});

test("an attachment streamed in chunks decrypts to the same bytes; tampering is refused", () => {
  const plaintext = randomBytes(300_007);
  const encryptor = new AttachmentEncryptor();
  const parts = [];
  for (let offset = 0; offset < plaintext.length; offset += 65_543) {
    const chunk = plaintext.subarray(offset, offset + 65_543);
    const encrypted = encryptor.update(chunk);
    assert.equal(encrypted.length, chunk.length);
    parts.push(encrypted);
  }
  const keys = JSON.parse(encryptor.finish());
  assert.equal(thrown(() => encryptor.finish()).code, "finished");
  assert.equal(keys.size, plaintext.length);
  assert.equal(keys.algorithm, "parley.aes-ctr-256.v1");
  const ciphertext = Buffer.concat(parts);
  assert.notDeepEqual(ciphertext, plaintext);
  const info = JSON.stringify({ ...keys, media_id: randomUUID(), content_type: "application/pdf", name: "a.pdf" });

  const verifier = new AttachmentVerifier(info);
  verifier.update(ciphertext);
  verifier.finish();

  const decryptor = new AttachmentDecryptor(info);
  const out = [];
  for (let offset = 0; offset < ciphertext.length; offset += 4_096) {
    out.push(decryptor.update(ciphertext.subarray(offset, offset + 4_096)));
  }
  decryptor.finish();
  assert.deepEqual(Buffer.concat(out), plaintext);

  // A file message carries the info, and the recipient decrypts with what it read.
  const { directory, alice, bobPhone, chatId } = world();
  sendRoomKey(alice, directory, chatId, [bobPhone]);
  const fileMessage = { type: "file", file: JSON.parse(info), body: "the report" };
  const encrypted = JSON.parse(alice.encryptMessage(chatId, JSON.stringify(fileMessage), now()));
  const received = JSON.parse(
    bobPhone.decryptMessage(chatId, alice.userId, alice.deviceId, encrypted.algorithm, encrypted.ciphertext),
  );
  assert.deepEqual(received.content, fileMessage);

  const tampered = Buffer.from(ciphertext);
  tampered[123_456] ^= 0x01;
  const tamperedDecryptor = new AttachmentDecryptor(JSON.stringify(received.content.file));
  tamperedDecryptor.update(tampered);
  const error = thrown(() => tamperedDecryptor.finish());
  assert.equal(error.code, "attachment_hash_mismatch");
  const truncated = new AttachmentVerifier(info);
  truncated.update(ciphertext.subarray(1));
  const short = thrown(() => truncated.finish());
  assert.equal(short.code, "attachment_size_mismatch");
  assert.deepEqual(short.details, { expected: plaintext.length, actual: plaintext.length - 1 });
});
