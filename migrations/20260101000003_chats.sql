-- Chats. Write side: lookup tables kept by the events trigger in the commit's transaction, and the
-- per-message body keys (crypto-shredding). Read side: chats, members, messages.

-- One direct chat per pair of users (ordered pair).
CREATE TABLE direct_chats
(
    user_low  uuid NOT NULL,
    user_high uuid NOT NULL,
    chat_id   uuid NOT NULL UNIQUE,
    PRIMARY KEY (user_low, user_high),
    CHECK (user_low < user_high)
);

CREATE TABLE chat_invites
(
    code    text PRIMARY KEY,
    chat_id uuid NOT NULL
);

-- Idempotent sends: a retried client_msg_id finds its message here.
CREATE TABLE chat_client_messages
(
    chat_id       uuid   NOT NULL,
    sender_id     uuid   NOT NULL,
    client_msg_id text   NOT NULL,
    message_id    uuid   NOT NULL,
    seq           bigint NOT NULL,
    PRIMARY KEY (chat_id, sender_id, client_msg_id)
);

-- The key that opens a message body sealed in its MessageSent event. Deleting the message for
-- everyone deletes the key (trigger below), which makes the stored body unreadable for good.
CREATE TABLE message_keys
(
    message_id uuid PRIMARY KEY,
    key        bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION events_after_insert() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    body json;
BEGIN
    INSERT INTO outbox (position) VALUES (NEW.position);
    IF NEW.aggregate_type = 'User' AND NEW.event_type = 'UserRegistered' THEN
        INSERT INTO user_emails (email, user_id)
        VALUES (lower(NEW.payload -> 'UserRegistered' ->> 'email'), NEW.aggregate_id::uuid);
    ELSIF NEW.aggregate_type = 'Chat' THEN
        body := NEW.payload -> NEW.event_type;
        IF NEW.event_type = 'ChatCreated' AND body ->> 'kind' = 'direct' THEN
            INSERT INTO direct_chats (user_low, user_high, chat_id)
            SELECT least(a, b), greatest(a, b), NEW.aggregate_id::uuid
            FROM (SELECT (body -> 'members' -> 0 ->> 'user_id')::uuid AS a,
                         (body -> 'members' -> 1 ->> 'user_id')::uuid AS b) pair;
        ELSIF NEW.event_type = 'InviteCreated' THEN
            INSERT INTO chat_invites (code, chat_id) VALUES (body ->> 'code', NEW.aggregate_id::uuid);
        ELSIF NEW.event_type = 'MessageSent' THEN
            INSERT INTO chat_client_messages (chat_id, sender_id, client_msg_id, message_id, seq)
            VALUES (NEW.aggregate_id::uuid, (body ->> 'sender_id')::uuid, body ->> 'client_msg_id',
                    (body ->> 'message_id')::uuid, (body ->> 'seq')::bigint);
        ELSIF NEW.event_type = 'MessageDeleted' THEN
            DELETE FROM message_keys WHERE message_id = (body ->> 'message_id')::uuid;
        END IF;
    END IF;
    PERFORM pg_notify('parley_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TABLE chats
(
    id               uuid PRIMARY KEY,
    kind             text        NOT NULL,
    name             text,
    created_by       uuid        NOT NULL,
    created_at       timestamptz NOT NULL,
    last_seq         bigint      NOT NULL DEFAULT 0,
    last_activity_at timestamptz NOT NULL
);

CREATE TABLE chat_members
(
    chat_id     uuid        NOT NULL REFERENCES chats (id),
    user_id     uuid        NOT NULL,
    role        text        NOT NULL,
    joined_at   timestamptz NOT NULL,
    read_up_to  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id);

CREATE TABLE messages
(
    chat_id       uuid        NOT NULL,
    seq           bigint      NOT NULL,
    id            uuid        NOT NULL UNIQUE,
    sender_id     uuid        NOT NULL,
    client_msg_id text        NOT NULL,
    ciphertext    text,
    algorithm     text        NOT NULL,
    media_ids     uuid[]      NOT NULL DEFAULT '{}',
    reply_to      uuid,
    created_at    timestamptz NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (chat_id, seq)
);

CREATE TABLE hidden_messages
(
    user_id uuid   NOT NULL,
    chat_id uuid   NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (user_id, chat_id, seq)
);
