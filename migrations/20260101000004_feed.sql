-- Realtime feed: what each user's WebSocket delivers, in cursor order, so that a reconnect with
-- ?cursor= replays exactly what was missed. Rows reference messages instead of copying bodies, so
-- a message deleted for everyone replays as a tombstone.
CREATE TABLE user_feed
(
    user_id    uuid        NOT NULL,
    cursor     bigserial   NOT NULL,
    kind       text        NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, cursor)
);

-- The feed projection's own view of membership (it cannot wait for the chats projection).
CREATE TABLE feed_members
(
    chat_id uuid NOT NULL,
    user_id uuid NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);
