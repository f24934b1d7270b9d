-- The key directory's read model (`keys` projection): devices with their identity keys and
-- one-time key stock, and each device's queue of to-device messages until it acknowledges them.
CREATE TABLE devices
(
    device_id          uuid        PRIMARY KEY,
    user_id            uuid        NOT NULL,
    display_name       text        NOT NULL,
    curve25519         text        NOT NULL,
    ed25519            text        NOT NULL,
    signature          text        NOT NULL,
    one_time_key_count integer     NOT NULL DEFAULT 0,
    has_fallback_key   boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL,
    last_seen_at       timestamptz NOT NULL,
    removed_at         timestamptz
);
CREATE INDEX devices_user ON devices (user_id) WHERE removed_at IS NULL;

CREATE TABLE to_device_messages
(
    position         bigserial   PRIMARY KEY,
    id               uuid        NOT NULL UNIQUE,
    device_id        uuid        NOT NULL,
    sender_id        uuid        NOT NULL,
    sender_device_id uuid        NOT NULL,
    ciphertext       text        NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX to_device_messages_device ON to_device_messages (device_id, position);
CREATE INDEX to_device_messages_age ON to_device_messages (created_at);

-- The device that sent a message, as the server knew it from the sender's session (none for
-- messages sent before devices existed).
ALTER TABLE messages ADD COLUMN sender_device_id uuid;
