/* @ts-self-types="./parley_core.d.ts" */

/**
 * Decrypts a downloaded attachment while hashing it. Everything `update` returns is **untrusted** until
 * `finish` returned without throwing: a caller that shows or stores the plaintext early must discard it when
 * `finish` throws. (For a check before any plaintext exists, run an `AttachmentVerifier` first.)
 */
export class AttachmentDecryptor {
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        AttachmentDecryptorFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        wasm.__wbg_attachmentdecryptor_free(ptr, 0);
    }
    /**
     * Ends the stream: throws `attachment_size_mismatch` or `attachment_hash_mismatch` when the ciphertext
     * was not the one described (then discard all plaintext). The object can no longer be used.
     */
    finish() {
        const ret = wasm.attachmentdecryptor_finish(this.__wbg_ptr);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * A decryptor for the attachment `info_json` (`AttachmentInfoJson`, from the decrypted message) describes.
     * @param {string} info_json
     */
    constructor(info_json) {
        const ptr0 = passStringToWasm0(info_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.attachmentdecryptor_new(ptr0, len0);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        AttachmentDecryptorFinalization.register(this, this.__wbg_ptr, this);
        return this;
    }
    /**
     * Hashes the next ciphertext chunk (any length) and returns its plaintext (same length, untrusted until
     * `finish`).
     * @param {Uint8Array | number[]} chunk
     * @returns {Uint8Array}
     */
    update(chunk) {
        const ptr0 = passArray8ToWasm0(chunk, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.attachmentdecryptor_update(this.__wbg_ptr, ptr0, len0);
        if (ret[3]) {
            throw takeFromExternrefTable0(ret[2]);
        }
        var v2 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
        wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        return v2;
    }
}
if (Symbol.dispose) AttachmentDecryptor.prototype[Symbol.dispose] = AttachmentDecryptor.prototype.free;

/**
 * Encrypts one attachment under a fresh random key: pass every chunk of the file, in order, to `update`
 * and upload what it returns, then call `finish` for the keys.
 */
export class AttachmentEncryptor {
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        AttachmentEncryptorFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        wasm.__wbg_attachmentencryptor_free(ptr, 0);
    }
    /**
     * Ends the stream. Returns `EncryptedAttachmentKeysJson`: `{size, key, iv, sha256, algorithm}`, the
     * fields of the message's `AttachmentInfoJson` except `media_id`, `content_type` and `name`, which the
     * caller adds once the upload returned the media id. The object can no longer be used.
     * @returns {Json<EncryptedAttachmentKeysJson>}
     */
    finish() {
        let deferred2_0;
        let deferred2_1;
        try {
            const ret = wasm.attachmentencryptor_finish(this.__wbg_ptr);
            var ptr1 = ret[0];
            var len1 = ret[1];
            if (ret[3]) {
                ptr1 = 0; len1 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred2_0 = ptr1;
            deferred2_1 = len1;
            return getStringFromWasm0(ptr1, len1);
        } finally {
            wasm.__wbindgen_free(deferred2_0, deferred2_1, 1);
        }
    }
    /**
     * A new encryptor with a random key and IV.
     */
    constructor() {
        const ret = wasm.attachmentencryptor_new();
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        AttachmentEncryptorFinalization.register(this, this.__wbg_ptr, this);
        return this;
    }
    /**
     * Encrypts the next plaintext chunk (any length) and returns its ciphertext (same length); the input is
     * left as it was.
     * @param {Uint8Array | number[]} chunk
     * @returns {Uint8Array}
     */
    update(chunk) {
        const ptr0 = passArray8ToWasm0(chunk, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.attachmentencryptor_update(this.__wbg_ptr, ptr0, len0);
        if (ret[3]) {
            throw takeFromExternrefTable0(ret[2]);
        }
        var v2 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
        wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        return v2;
    }
}
if (Symbol.dispose) AttachmentEncryptor.prototype[Symbol.dispose] = AttachmentEncryptor.prototype.free;

/**
 * Checks a downloaded ciphertext's size and hash without decrypting it (a first pass before an
 * `AttachmentDecryptor`, when no plaintext may be produced from unverified bytes).
 */
export class AttachmentVerifier {
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        AttachmentVerifierFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        wasm.__wbg_attachmentverifier_free(ptr, 0);
    }
    /**
     * Throws `attachment_size_mismatch` or `attachment_hash_mismatch` unless the whole ciphertext had the
     * described size and hash. The object can no longer be used.
     */
    finish() {
        const ret = wasm.attachmentverifier_finish(this.__wbg_ptr);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * A verifier for the attachment `info_json` (`AttachmentInfoJson`) describes.
     * @param {string} info_json
     */
    constructor(info_json) {
        const ptr0 = passStringToWasm0(info_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.attachmentverifier_new(ptr0, len0);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        AttachmentVerifierFinalization.register(this, this.__wbg_ptr, this);
        return this;
    }
    /**
     * Hashes the next ciphertext chunk.
     * @param {Uint8Array | number[]} chunk
     */
    update(chunk) {
        const ptr0 = passArray8ToWasm0(chunk, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.attachmentverifier_update(this.__wbg_ptr, ptr0, len0);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
}
if (Symbol.dispose) AttachmentVerifier.prototype[Symbol.dispose] = AttachmentVerifier.prototype.free;

/**
 * This device: its Olm account, the trust store (trust on first use), its Olm sessions with other devices
 * and its Megolm sessions per chat. Sans-IO: every method takes what the server answered (as the REST
 * API's JSON) and returns what to send (as JSON text); the caller owns the network, storage and clock.
 *
 * Methods that fail throw a `ParleyCoreError` (an `Error` with `code` and sometimes `details`). After any
 * call that changes the state (most of them), persist it with `save` before acting on the result where the
 * protocol says so (e.g. before acknowledging to-device messages or sending a message).
 */
export class Device {
    static __wrap(ptr) {
        const obj = Object.create(Device.prototype);
        obj.__wbg_ptr = ptr;
        DeviceFinalization.register(obj, obj.__wbg_ptr, obj);
        return obj;
    }
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        DeviceFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        wasm.__wbg_device_free(ptr, 0);
    }
    /**
     * Adopts the changed keys of a device after the user compared safety numbers out of band. Returns the
     * now trusted keys (`DeviceKeysJson`). Throws `unknown_devices` for an unknown device and
     * `envelope_mismatch` when it has no pending key change.
     * @param {string} user_id
     * @param {string} device_id
     * @returns {Json<DeviceKeysJson>}
     */
    acceptKeyChange(user_id, device_id) {
        let deferred4_0;
        let deferred4_1;
        try {
            let ptr0, len0, ptr1, len1;
            try {
                ptr0 = passStringToWasm0(user_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len0 = WASM_VECTOR_LEN;
                ptr1 = passStringToWasm0(device_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len1 = WASM_VECTOR_LEN;
            } catch (e) {
                if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
                if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
                throw e;
            }
            const ret = wasm.device_acceptKeyChange(this.__wbg_ptr, ptr0, len0, ptr1, len1);
            var ptr3 = ret[0];
            var len3 = ret[1];
            if (ret[3]) {
                ptr3 = 0; len3 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred4_0 = ptr3;
            deferred4_1 = len3;
            return getStringFromWasm0(ptr3, len3);
        } finally {
            wasm.__wbindgen_free(deferred4_0, deferred4_1, 1);
        }
    }
    /**
     * Decrypts a chat message of `chat_id` sent by the device (`sender_id`, `sender_device_id`) as the server
     * reports it, from the message's `algorithm` and `ciphertext`. Returns `DecryptedMessageJson`
     * (`{content, session_id, message_index}`; the same session and index under two message ids is a
     * replay). Throws `missing_room_key` when that device's room key has not arrived (yet).
     * @param {string} chat_id
     * @param {string} sender_id
     * @param {string} sender_device_id
     * @param {string} algorithm
     * @param {string} ciphertext
     * @returns {Json<DecryptedMessageJson>}
     */
    decryptMessage(chat_id, sender_id, sender_device_id, algorithm, ciphertext) {
        let deferred7_0;
        let deferred7_1;
        try {
            let ptr0, len0, ptr1, len1, ptr2, len2, ptr3, len3, ptr4, len4;
            try {
                ptr0 = passStringToWasm0(chat_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len0 = WASM_VECTOR_LEN;
                ptr1 = passStringToWasm0(sender_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len1 = WASM_VECTOR_LEN;
                ptr2 = passStringToWasm0(sender_device_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len2 = WASM_VECTOR_LEN;
                ptr3 = passStringToWasm0(algorithm, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len3 = WASM_VECTOR_LEN;
                ptr4 = passStringToWasm0(ciphertext, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len4 = WASM_VECTOR_LEN;
            } catch (e) {
                if (ptr4) { wasm.__wbindgen_free(ptr4, len4 * 1, 1); }
                if (ptr3) { wasm.__wbindgen_free(ptr3, len3 * 1, 1); }
                if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
                if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
                if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
                throw e;
            }
            const ret = wasm.device_decryptMessage(this.__wbg_ptr, ptr0, len0, ptr1, len1, ptr2, len2, ptr3, len3, ptr4, len4);
            var ptr6 = ret[0];
            var len6 = ret[1];
            if (ret[3]) {
                ptr6 = 0; len6 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred7_0 = ptr6;
            deferred7_1 = len6;
            return getStringFromWasm0(ptr6, len6);
        } finally {
            wasm.__wbindgen_free(deferred7_0, deferred7_1, 1);
        }
    }
    /**
     * Decrypts one to-device message as `GET /to-device` or the `to_device` realtime frame delivers it
     * (`IncomingToDeviceJson`, `{id, sender_id, sender_device_id, ciphertext}`), checks it and applies it (a
     * room key is stored). Returns a `ToDeviceEventJson` (`{"RoomKey": {chat_id, session_id, sender}}`).
     * Throws `unknown_devices` when the sender's keys were never fetched: fetch them
     * (`observeUserDevices`) and retry before acknowledging; `unresolved_key_change` while the sender's key
     * change is not accepted (leave the message queued).
     * @param {string} message_json
     * @returns {Json<ToDeviceEventJson>}
     */
    decryptToDevice(message_json) {
        let deferred3_0;
        let deferred3_1;
        try {
            const ptr0 = passStringToWasm0(message_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            const len0 = WASM_VECTOR_LEN;
            const ret = wasm.device_decryptToDevice(this.__wbg_ptr, ptr0, len0);
            var ptr2 = ret[0];
            var len2 = ret[1];
            if (ret[3]) {
                ptr2 = 0; len2 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred3_0 = ptr2;
            deferred3_1 = len2;
            return getStringFromWasm0(ptr2, len2);
        } finally {
            wasm.__wbindgen_free(deferred3_0, deferred3_1, 1);
        }
    }
    /**
     * This device's id (UUID).
     * @returns {string}
     */
    get deviceId() {
        let deferred1_0;
        let deferred1_1;
        try {
            const ret = wasm.device_deviceId(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * Forgets the chat's outbound session, so the next `prepareSend` starts a new one (e.g. when a
     * recipient device is suspected to be compromised).
     * @param {string} chat_id
     */
    discardOutboundSession(chat_id) {
        const ptr0 = passStringToWasm0(chat_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.device_discardOutboundSession(this.__wbg_ptr, ptr0, len0);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * Encrypts a chat message (`MessageContentJson`: `{"type": "text", "body": ...}` or
     * `{"type": "file", "file": AttachmentInfoJson, "body": caption, "thumbnail"?: ThumbnailJson}`; a
     * thumbnail that is not a small raster image is left out) with the chat's current outbound
     * session. Returns `EncryptedMessageJson` (`{algorithm, ciphertext}`), the message API's fields. Save
     * the state before sending it. Throws `no_outbound_session` without a current session: call
     * `prepareSend` first.
     * @param {string} chat_id
     * @param {string} content_json
     * @param {number} now_unix_secs
     * @returns {Json<EncryptedMessageJson>}
     */
    encryptMessage(chat_id, content_json, now_unix_secs) {
        let deferred5_0;
        let deferred5_1;
        try {
            const val3 = +now_unix_secs;
            let ptr0, len0, ptr1, len1;
            try {
                ptr0 = passStringToWasm0(chat_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len0 = WASM_VECTOR_LEN;
                ptr1 = passStringToWasm0(content_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len1 = WASM_VECTOR_LEN;
            } catch (e) {
                if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
                if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
                throw e;
            }
            const ret = wasm.device_encryptMessage(this.__wbg_ptr, ptr0, len0, ptr1, len1, val3);
            var ptr4 = ret[0];
            var len4 = ret[1];
            if (ret[3]) {
                ptr4 = 0; len4 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred5_0 = ptr4;
            deferred5_1 = len4;
            return getStringFromWasm0(ptr4, len4);
        } finally {
            wasm.__wbindgen_free(deferred5_0, deferred5_1, 1);
        }
    }
    /**
     * Encrypts a to-device payload (`ToDevicePayloadJson`, `{"type": "parley.room_key", "content": {...}}`)
     * for one trusted device, over the most recent Olm session with it or a new one from `one_time_key_json`
     * (one item of the `POST /keys/claim` answer's `keys`, signature verified first). Returns the
     * `POST /to-device` item (`OutgoingToDeviceJson`). Chat room keys are better sent with `shareRoomKey`.
     * @param {string} user_id
     * @param {string} device_id
     * @param {string | null | undefined} one_time_key_json
     * @param {string} payload_json
     * @returns {Json<OutgoingToDeviceJson>}
     */
    encryptToDevice(user_id, device_id, one_time_key_json, payload_json) {
        let deferred6_0;
        let deferred6_1;
        try {
            let ptr0, len0, ptr1, len1, ptr2, len2, ptr3, len3;
            try {
                ptr0 = passStringToWasm0(user_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len0 = WASM_VECTOR_LEN;
                ptr1 = passStringToWasm0(device_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len1 = WASM_VECTOR_LEN;
                ptr2 = isLikeNone(one_time_key_json) ? 0 : passStringToWasm0(one_time_key_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len2 = WASM_VECTOR_LEN;
                ptr3 = passStringToWasm0(payload_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len3 = WASM_VECTOR_LEN;
            } catch (e) {
                if (ptr3) { wasm.__wbindgen_free(ptr3, len3 * 1, 1); }
                if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
                if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
                if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
                throw e;
            }
            const ret = wasm.device_encryptToDevice(this.__wbg_ptr, ptr0, len0, ptr1, len1, ptr2, len2, ptr3, len3);
            var ptr5 = ret[0];
            var len5 = ret[1];
            if (ret[3]) {
                ptr5 = 0; len5 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred6_0 = ptr5;
            deferred6_1 = len5;
            return getStringFromWasm0(ptr5, len5);
        } finally {
            wasm.__wbindgen_free(deferred6_0, deferred6_1, 1);
        }
    }
    /**
     * Whether an Olm session with the device exists (otherwise reaching it needs a claimed one-time key).
     * @param {string} user_id
     * @param {string} device_id
     * @returns {boolean}
     */
    hasOlmSession(user_id, device_id) {
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = passStringToWasm0(user_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = passStringToWasm0(device_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        const ret = wasm.device_hasOlmSession(this.__wbg_ptr, ptr0, len0, ptr1, len1);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return ret[0] !== 0;
    }
    /**
     * This device's public identity keys: `DeviceKeysJson` (`{user_id, device_id, curve25519, ed25519}`).
     * @returns {Json<DeviceKeysJson>}
     */
    identityKeys() {
        let deferred2_0;
        let deferred2_1;
        try {
            const ret = wasm.device_identityKeys(this.__wbg_ptr);
            var ptr1 = ret[0];
            var len1 = ret[1];
            if (ret[3]) {
                ptr1 = 0; len1 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred2_0 = ptr1;
            deferred2_1 = len1;
            return getStringFromWasm0(ptr1, len1);
        } finally {
            wasm.__wbindgen_free(deferred2_0, deferred2_1, 1);
        }
    }
    /**
     * The body of `PUT /keys/devices/{device_id}` (`DeviceKeysUploadJson`): the signed identity keys and
     * every one-time and fallback key not published yet. Call `markPublished` once the server answered 200.
     * @param {string | null} [display_name]
     * @returns {Json<DeviceKeysUploadJson>}
     */
    keysUpload(display_name) {
        let deferred3_0;
        let deferred3_1;
        try {
            var ptr0 = isLikeNone(display_name) ? 0 : passStringToWasm0(display_name, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            var len0 = WASM_VECTOR_LEN;
            const ret = wasm.device_keysUpload(this.__wbg_ptr, ptr0, len0);
            var ptr2 = ret[0];
            var len2 = ret[1];
            if (ret[3]) {
                ptr2 = 0; len2 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred3_0 = ptr2;
            deferred3_1 = len2;
            return getStringFromWasm0(ptr2, len2);
        } finally {
            wasm.__wbindgen_free(deferred3_0, deferred3_1, 1);
        }
    }
    /**
     * What the trust store knows about one device (`KnownDeviceJson`: `{keys, display_name, listed,
     * pending_key_change}`), or `undefined` when its keys were never fetched.
     * @param {string} user_id
     * @param {string} device_id
     * @returns {Json<KnownDeviceJson> | undefined}
     */
    knownDevice(user_id, device_id) {
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = passStringToWasm0(user_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = passStringToWasm0(device_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        const ret = wasm.device_knownDevice(this.__wbg_ptr, ptr0, len0, ptr1, len1);
        if (ret[3]) {
            throw takeFromExternrefTable0(ret[2]);
        }
        let v3;
        if (ret[0] !== 0) {
            v3 = getStringFromWasm0(ret[0], ret[1]);
            wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        }
        return v3;
    }
    /**
     * The user's devices the server's last listing contained, with their trusted keys (`DeviceKeysJson[]`).
     * The recipients of a chat message are these devices of every member (this device is left out by
     * `prepareSend` itself).
     * @param {string} user_id
     * @returns {Json<DeviceKeysJson[]>}
     */
    listedDevices(user_id) {
        let deferred3_0;
        let deferred3_1;
        try {
            const ptr0 = passStringToWasm0(user_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            const len0 = WASM_VECTOR_LEN;
            const ret = wasm.device_listedDevices(this.__wbg_ptr, ptr0, len0);
            var ptr2 = ret[0];
            var len2 = ret[1];
            if (ret[3]) {
                ptr2 = 0; len2 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred3_0 = ptr2;
            deferred3_1 = len2;
            return getStringFromWasm0(ptr2, len2);
        } finally {
            wasm.__wbindgen_free(deferred3_0, deferred3_1, 1);
        }
    }
    /**
     * Records that the last upload body was accepted by the server (its keys are no longer offered).
     */
    markPublished() {
        wasm.device_markPublished(this.__wbg_ptr);
    }
    /**
     * A new device for `user_id` whose id is `device_id` (the session id of the login that registers it),
     * with fresh identity keys, 50 one-time keys and a fallback key, none published yet: publish them with
     * `keysUpload` then `markPublished`.
     * @param {string} user_id
     * @param {string} device_id
     */
    constructor(user_id, device_id) {
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = passStringToWasm0(user_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = passStringToWasm0(device_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        const ret = wasm.device_new(ptr0, len0, ptr1, len1);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        DeviceFinalization.register(this, this.__wbg_ptr, this);
        return this;
    }
    /**
     * Compares one user's device listing, the answer of `GET /keys/users/{user_id}` or one item of the
     * `POST /keys/query` answer's `users` (`UserDevicesJson`), with the trust store. New devices with valid
     * signatures are trusted; changed keys are reported and withheld until `acceptKeyChange`. Returns a
     * `DeviceListReportJson` (`{new_devices, removed_devices, key_changes, rejected_devices}`).
     * @param {string} listing_json
     * @returns {Json<DeviceListReportJson>}
     */
    observeUserDevices(listing_json) {
        let deferred3_0;
        let deferred3_1;
        try {
            const ptr0 = passStringToWasm0(listing_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            const len0 = WASM_VECTOR_LEN;
            const ret = wasm.device_observeUserDevices(this.__wbg_ptr, ptr0, len0);
            var ptr2 = ret[0];
            var len2 = ret[1];
            if (ret[3]) {
                ptr2 = 0; len2 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred3_0 = ptr2;
            deferred3_1 = len2;
            return getStringFromWasm0(ptr2, len2);
        } finally {
            wasm.__wbindgen_free(deferred3_0, deferred3_1, 1);
        }
    }
    /**
     * Makes sure the chat has an outbound Megolm session for exactly `recipients_json` (a
     * `DeviceAddressJson[]`, `[{user_id, device_id}]`: every listed device of every member; this device is
     * left out automatically), starting a new one when the recipients changed, after 100 messages or 7
     * days. `now_unix_secs` is the current time in seconds (`Date.now() / 1000`). Returns a
     * `SendPreparationJson` (`{session_id, rotated, needs_room_key, needs_one_time_key, withheld}`): claim
     * keys for `needs_one_time_key` (`POST /keys/claim`) and call `shareRoomKey`. Throws
     * `unknown_devices` when a recipient's keys were never fetched.
     * @param {string} chat_id
     * @param {string} recipients_json
     * @param {number} now_unix_secs
     * @returns {Json<SendPreparationJson>}
     */
    prepareSend(chat_id, recipients_json, now_unix_secs) {
        let deferred5_0;
        let deferred5_1;
        try {
            const val3 = +now_unix_secs;
            let ptr0, len0, ptr1, len1;
            try {
                ptr0 = passStringToWasm0(chat_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len0 = WASM_VECTOR_LEN;
                ptr1 = passStringToWasm0(recipients_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len1 = WASM_VECTOR_LEN;
            } catch (e) {
                if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
                if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
                throw e;
            }
            const ret = wasm.device_prepareSend(this.__wbg_ptr, ptr0, len0, ptr1, len1, val3);
            var ptr4 = ret[0];
            var len4 = ret[1];
            if (ret[3]) {
                ptr4 = 0; len4 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred5_0 = ptr4;
            deferred5_1 = len4;
            return getStringFromWasm0(ptr4, len4);
        } finally {
            wasm.__wbindgen_free(deferred5_0, deferred5_1, 1);
        }
    }
    /**
     * Given the server's one-time key count (the upload answer's `one_time_key_count` or the
     * `one_time_keys.low` frame's `remaining`) and whether it has a fallback key, generates the keys to top
     * it up (to 50 once below 10; a new fallback key when it has none). Returns the upload body
     * (`DeviceKeysUploadJson`) when there is anything to publish, else `undefined`; after a successful
     * upload call `markPublished`.
     * @param {number} server_one_time_key_count
     * @param {boolean} server_has_fallback_key
     * @returns {Json<DeviceKeysUploadJson> | undefined}
     */
    replenishOneTimeKeys(server_one_time_key_count, server_has_fallback_key) {
        const ret = wasm.device_replenishOneTimeKeys(this.__wbg_ptr, server_one_time_key_count, server_has_fallback_key);
        if (ret[3]) {
            throw takeFromExternrefTable0(ret[2]);
        }
        let v1;
        if (ret[0] !== 0) {
            v1 = getStringFromWasm0(ret[0], ret[1]);
            wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        }
        return v1;
    }
    /**
     * Restores a device saved by `save` with the same 32-byte `key`. Throws `state_decryption` when the key
     * is wrong or the bytes were altered.
     * @param {Uint8Array | number[]} bytes
     * @param {Uint8Array | number[]} key
     * @returns {Device}
     */
    static restore(bytes, key) {
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = passArray8ToWasm0(bytes, wasm.__wbindgen_malloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = passArray8ToWasm0(key, wasm.__wbindgen_malloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        const ret = wasm.device_restore(ptr0, len0, ptr1, len1);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return Device.__wrap(ret[0]);
    }
    /**
     * The safety number between this user and `other_user_id` over the devices currently listed for both:
     * `SafetyNumberJson` (`{digits, grouped}`: 60 digits, and 12 groups of 5 separated by spaces).
     * @param {string} other_user_id
     * @returns {Json<SafetyNumberJson>}
     */
    safetyNumber(other_user_id) {
        let deferred3_0;
        let deferred3_1;
        try {
            const ptr0 = passStringToWasm0(other_user_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            const len0 = WASM_VECTOR_LEN;
            const ret = wasm.device_safetyNumber(this.__wbg_ptr, ptr0, len0);
            var ptr2 = ret[0];
            var len2 = ret[1];
            if (ret[3]) {
                ptr2 = 0; len2 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred3_0 = ptr2;
            deferred3_1 = len2;
            return getStringFromWasm0(ptr2, len2);
        } finally {
            wasm.__wbindgen_free(deferred3_0, deferred3_1, 1);
        }
    }
    /**
     * The whole state, encrypted (ChaCha20-Poly1305) under the caller's 32-byte `key`, for IndexedDB or
     * similar. Contains every private key: never store it unencrypted elsewhere, never send it anywhere.
     * @param {Uint8Array | number[]} key
     * @returns {Uint8Array}
     */
    save(key) {
        const ptr0 = passArray8ToWasm0(key, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.device_save(this.__wbg_ptr, ptr0, len0);
        if (ret[3]) {
            throw takeFromExternrefTable0(ret[2]);
        }
        var v2 = getArrayU8FromWasm0(ret[0], ret[1]).slice();
        wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        return v2;
    }
    /**
     * Encrypts the chat's current room key for every recipient that lacks it, over existing Olm sessions or
     * the claimed one-time keys `claimed_keys_json`: the `POST /keys/claim` answer (`{"keys": [...]}`) or its
     * `keys` array (`ClaimedOneTimeKeyJson[]`); `"[]"` when nothing was claimed. Returns a
     * `RoomKeyShareJson`: send `messages` with `POST /to-device`; the devices listed in
     * `devices_without_one_time_key`, `rejected_one_time_keys` and `withheld` did not get the key.
     * @param {string} chat_id
     * @param {string} claimed_keys_json
     * @returns {Json<RoomKeyShareJson>}
     */
    shareRoomKey(chat_id, claimed_keys_json) {
        let deferred4_0;
        let deferred4_1;
        try {
            let ptr0, len0, ptr1, len1;
            try {
                ptr0 = passStringToWasm0(chat_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len0 = WASM_VECTOR_LEN;
                ptr1 = passStringToWasm0(claimed_keys_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len1 = WASM_VECTOR_LEN;
            } catch (e) {
                if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
                if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
                throw e;
            }
            const ret = wasm.device_shareRoomKey(this.__wbg_ptr, ptr0, len0, ptr1, len1);
            var ptr3 = ret[0];
            var len3 = ret[1];
            if (ret[3]) {
                ptr3 = 0; len3 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred4_0 = ptr3;
            deferred4_1 = len3;
            return getStringFromWasm0(ptr3, len3);
        } finally {
            wasm.__wbindgen_free(deferred4_0, deferred4_1, 1);
        }
    }
    /**
     * The whole trust store (`TrustStoreJson`: `{devices: KnownDeviceJson[]}`), e.g. for a device list UI.
     * @returns {Json<TrustStoreJson>}
     */
    trustStore() {
        let deferred2_0;
        let deferred2_1;
        try {
            const ret = wasm.device_trustStore(this.__wbg_ptr);
            var ptr1 = ret[0];
            var len1 = ret[1];
            if (ret[3]) {
                ptr1 = 0; len1 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred2_0 = ptr1;
            deferred2_1 = len1;
            return getStringFromWasm0(ptr1, len1);
        } finally {
            wasm.__wbindgen_free(deferred2_0, deferred2_1, 1);
        }
    }
    /**
     * The user this device belongs to (UUID).
     * @returns {string}
     */
    get userId() {
        let deferred1_0;
        let deferred1_1;
        try {
            const ret = wasm.device_userId(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
}
if (Symbol.dispose) Device.prototype[Symbol.dispose] = Device.prototype.free;
function __wbg_get_imports() {
    const import0 = {
        __proto__: null,
        __wbg___wbindgen_throw_4c88d8bf264fd984: function(arg0, arg1) {
            throw new Error(getStringFromWasm0(arg0, arg1));
        },
        __wbg_getRandomValues_8b6f1f663e6f188d: function() { return handleError(function (arg0, arg1) {
            globalThis.crypto.getRandomValues(getArrayU8FromWasm0(arg0, arg1));
        }, arguments); },
        __wbg_new_9598180267cf1d22: function(arg0, arg1) {
            const ret = new Error(getStringFromWasm0(arg0, arg1));
            return ret;
        },
        __wbg_parse_69645dd7676f54b5: function() { return handleError(function (arg0, arg1) {
            const ret = JSON.parse(getStringFromWasm0(arg0, arg1));
            return ret;
        }, arguments); },
        __wbg_set_code_fe2db24e02ceea7f: function(arg0, arg1, arg2) {
            arg0.code = getStringFromWasm0(arg1, arg2);
        },
        __wbg_set_details_3152243832f6cd92: function(arg0, arg1) {
            arg0.details = arg1;
        },
        __wbg_set_name_493e4d033cc254a3: function(arg0, arg1, arg2) {
            arg0.name = getStringFromWasm0(arg1, arg2);
        },
        __wbindgen_init_externref_table: function() {
            const table = wasm.__wbindgen_externrefs;
            table.set(0, undefined);
            table.set(1024, undefined);
            table.set(1025, null);
            table.set(1026, true);
            table.set(1027, false);
        },
    };
    return {
        __proto__: null,
        "./parley_core_bg.js": import0,
    };
}

const AttachmentDecryptorFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(ptr => wasm.__wbg_attachmentdecryptor_free(ptr, 1));
const AttachmentEncryptorFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(ptr => wasm.__wbg_attachmentencryptor_free(ptr, 1));
const AttachmentVerifierFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(ptr => wasm.__wbg_attachmentverifier_free(ptr, 1));
const DeviceFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(ptr => wasm.__wbg_device_free(ptr, 1));

function addToExternrefTable0(obj) {
    const idx = wasm.__externref_table_alloc();
    wasm.__wbindgen_externrefs.set(idx, obj);
    return idx;
}

function getArrayU8FromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    return getUint8ArrayMemory0().subarray(ptr / 1, ptr / 1 + len);
}

function getStringFromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    return decodeText(getUint8ArrayMemory0().subarray(ptr, ptr + len));
}

let cachedUint8ArrayMemory0 = null;
function getUint8ArrayMemory0() {
    if (cachedUint8ArrayMemory0 === null || cachedUint8ArrayMemory0.byteLength === 0) {
        cachedUint8ArrayMemory0 = new Uint8Array(wasm.memory.buffer);
    }
    return cachedUint8ArrayMemory0;
}

function handleError(f, args) {
    try {
        return f.apply(this, args);
    } catch (e) {
        const idx = addToExternrefTable0(e);
        wasm.__wbindgen_exn_store(idx);
    }
}

function isLikeNone(x) {
    return x === undefined || x === null;
}

function passArray8ToWasm0(arg, malloc) {
    const ptr = malloc(arg.length * 1, 1) >>> 0;
    getUint8ArrayMemory0().set(arg, ptr / 1);
    WASM_VECTOR_LEN = arg.length;
    return ptr;
}

function passStringToWasm0(arg, malloc, realloc) {
    if (realloc === undefined) {
        const buf = cachedTextEncoder.encode(arg);
        const ptr = malloc(buf.length, 1) >>> 0;
        getUint8ArrayMemory0().subarray(ptr, ptr + buf.length).set(buf);
        WASM_VECTOR_LEN = buf.length;
        return ptr;
    }

    let len = arg.length;
    let ptr = malloc(len, 1) >>> 0;

    const mem = getUint8ArrayMemory0();

    let offset = 0;

    for (; offset < len; offset++) {
        const code = arg.charCodeAt(offset);
        if (code > 0x7F) break;
        mem[ptr + offset] = code;
    }
    if (offset !== len) {
        if (offset !== 0) {
            arg = arg.slice(offset);
        }
        ptr = realloc(ptr, len, len = offset + arg.length * 3, 1) >>> 0;
        const view = getUint8ArrayMemory0().subarray(ptr + offset, ptr + len);
        const ret = cachedTextEncoder.encodeInto(arg, view);

        offset += ret.written;
        ptr = realloc(ptr, len, offset, 1) >>> 0;
    }

    WASM_VECTOR_LEN = offset;
    return ptr;
}

function takeFromExternrefTable0(idx) {
    const value = wasm.__wbindgen_externrefs.get(idx);
    wasm.__externref_table_dealloc(idx);
    return value;
}

let cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
cachedTextDecoder.decode();
const MAX_SAFARI_DECODE_BYTES = 2146435072;
let numBytesDecoded = 0;
function decodeText(bytes) {
    numBytesDecoded += bytes.length;
    if (numBytesDecoded >= MAX_SAFARI_DECODE_BYTES) {
        cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
        cachedTextDecoder.decode();
        numBytesDecoded = bytes.length;
    }
    return cachedTextDecoder.decode(bytes);
}

const cachedTextEncoder = new TextEncoder();

if (!('encodeInto' in cachedTextEncoder)) {
    cachedTextEncoder.encodeInto = function (arg, view) {
        const buf = cachedTextEncoder.encode(arg);
        view.set(buf);
        return {
            read: arg.length,
            written: buf.length
        };
    };
}

let WASM_VECTOR_LEN = 0;

let wasmModule, wasmInstance, wasm;
function __wbg_finalize_init(instance, module) {
    wasmInstance = instance;
    wasm = instance.exports;
    wasmModule = module;
    cachedUint8ArrayMemory0 = null;
    wasm.__wbindgen_start();
    return wasm;
}

async function __wbg_load(module, imports) {
    if (typeof Response === 'function' && module instanceof Response) {
        if (!module.ok) {
            throw new Error(`failed to fetch Wasm: ${module.status} ${module.statusText} fetching '${module.url}'`);
        }

        if (typeof WebAssembly.instantiateStreaming === 'function') {
            try {
                return await WebAssembly.instantiateStreaming(module, imports);
            } catch (e) {
                const validResponse = expectedResponseType(module.type);

                if (validResponse && module.headers.get('Content-Type') !== 'application/wasm') {
                    console.warn("`WebAssembly.instantiateStreaming` failed because your server does not serve Wasm with `application/wasm` MIME type. Falling back to `WebAssembly.instantiate` which is slower. Original error:\n", e);

                } else { throw e; }
            }
        }

        const bytes = await module.arrayBuffer();
        return await WebAssembly.instantiate(bytes, imports);
    } else {
        const instance = await WebAssembly.instantiate(module, imports);

        if (instance instanceof WebAssembly.Instance) {
            return { instance, module };
        } else {
            return instance;
        }
    }

    function expectedResponseType(type) {
        switch (type) {
            case 'basic': case 'cors': case 'default': return true;
        }
        return false;
    }
}

function initSync(module) {
    if (wasm !== undefined) return wasm;


    if (module !== undefined) {
        if (Object.getPrototypeOf(module) === Object.prototype) {
            ({module} = module)
        } else {
            console.warn('using deprecated parameters for `initSync()`; pass a single object instead')
        }
    }

    const imports = __wbg_get_imports();
    if (!(module instanceof WebAssembly.Module)) {
        module = new WebAssembly.Module(module);
    }
    const instance = new WebAssembly.Instance(module, imports);
    return __wbg_finalize_init(instance, module);
}

let __wbg_init_promise;
async function __wbg_init(module_or_path) {
    if (wasm !== undefined) return wasm;
    if (__wbg_init_promise === undefined) {
        __wbg_init_promise = __wbg_init_once(module_or_path);
        __wbg_init_promise.catch(() => { __wbg_init_promise = undefined; });
    }
    return __wbg_init_promise;
}

async function __wbg_init_once(module_or_path) {

    if (module_or_path !== undefined) {
        if (Object.getPrototypeOf(module_or_path) === Object.prototype) {
            ({module_or_path} = module_or_path)
        } else {
            console.warn('using deprecated parameters for the initialization function; pass a single object instead')
        }
    }

    if (module_or_path === undefined) {
        module_or_path = new URL('parley_core_bg.wasm', import.meta.url);
    }
    const imports = __wbg_get_imports();

    if (typeof module_or_path === 'string' || (typeof Request === 'function' && module_or_path instanceof Request) || (typeof URL === 'function' && module_or_path instanceof URL)) {
        module_or_path = fetch(module_or_path);
    }

    const { instance, module } = await __wbg_load(await module_or_path, imports);

    return __wbg_finalize_init(instance, module);
}

export { initSync, __wbg_init as default };
