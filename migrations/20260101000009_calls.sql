-- Calls. Write side: at most one live call per chat, kept by the events trigger in the commit's
-- transaction (a second `CallStarted` for the chat fails its commit, and the api joins the live
-- call instead). Read side: calls and their participants; the feed's own view of which chat a call
-- belongs to and whom it rang.

CREATE TABLE active_calls
(
    chat_id uuid PRIMARY KEY,
    call_id uuid NOT NULL UNIQUE
);

CREATE TABLE calls
(
    id           uuid PRIMARY KEY,
    chat_id      uuid        NOT NULL,
    kind         text        NOT NULL,
    initiator_id uuid        NOT NULL,
    direct       boolean     NOT NULL,
    status       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    ended_at     timestamptz
);
CREATE INDEX calls_ringing ON calls (created_at) WHERE status = 'ringing';
CREATE INDEX calls_chat ON calls (chat_id, created_at DESC);

CREATE TABLE call_participants
(
    call_id    uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    state      text        NOT NULL,
    connected  boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (call_id, user_id)
);

CREATE TABLE feed_calls
(
    call_id     uuid PRIMARY KEY,
    chat_id     uuid   NOT NULL,
    invitee_ids uuid[] NOT NULL
);

CREATE OR REPLACE FUNCTION events_after_insert_statement() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO outbox (position) SELECT position FROM inserted ORDER BY position;

    INSERT INTO user_emails (email, user_id)
    SELECT lower(payload -> 'UserRegistered' ->> 'email'), aggregate_id::uuid
    FROM inserted WHERE aggregate_type = 'User' AND event_type = 'UserRegistered';

    -- `payload` is json (postgres-es's schema): every `->` on it parses the text again, so each
    -- message's fields are read in one pass.
    INSERT INTO chat_client_messages (chat_id, sender_id, client_msg_id, message_id, seq)
    SELECT aggregate_id::uuid, m.sender_id, m.client_msg_id, m.message_id, m.seq
    FROM inserted,
         json_to_record(payload -> 'MessageSent') AS m(sender_id uuid, client_msg_id text, message_id uuid, seq bigint)
    WHERE aggregate_type = 'Chat' AND event_type = 'MessageSent';

    IF EXISTS (SELECT 1 FROM inserted WHERE aggregate_type = 'Chat'
                 AND event_type IN ('ChatCreated', 'InviteCreated', 'MessageDeleted')) THEN
        INSERT INTO direct_chats (user_low, user_high, chat_id)
        SELECT least(a, b), greatest(a, b), chat_id
        FROM (SELECT aggregate_id::uuid AS chat_id,
                     (payload -> 'ChatCreated' -> 'members' -> 0 ->> 'user_id')::uuid AS a,
                     (payload -> 'ChatCreated' -> 'members' -> 1 ->> 'user_id')::uuid AS b
              FROM inserted
              WHERE aggregate_type = 'Chat' AND event_type = 'ChatCreated'
                AND payload -> 'ChatCreated' ->> 'kind' = 'direct') pairs;

        INSERT INTO chat_invites (code, chat_id)
        SELECT payload -> 'InviteCreated' ->> 'code', aggregate_id::uuid
        FROM inserted WHERE aggregate_type = 'Chat' AND event_type = 'InviteCreated';

        DELETE FROM message_keys
        WHERE message_id IN (SELECT (payload -> 'MessageDeleted' ->> 'message_id')::uuid
                             FROM inserted WHERE aggregate_type = 'Chat' AND event_type = 'MessageDeleted');
    END IF;

    IF EXISTS (SELECT 1 FROM inserted WHERE aggregate_type = 'Call'
                 AND event_type IN ('CallStarted', 'CallEnded')) THEN
        -- Ends first: a chat's next call may be in the same statement as its previous one's end.
        DELETE FROM active_calls a USING inserted i
        WHERE i.aggregate_type = 'Call' AND i.event_type = 'CallEnded' AND a.call_id = i.aggregate_id::uuid;

        INSERT INTO active_calls (chat_id, call_id)
        SELECT (payload -> 'CallStarted' ->> 'chat_id')::uuid, aggregate_id::uuid
        FROM inserted WHERE aggregate_type = 'Call' AND event_type = 'CallStarted';
    END IF;

    -- Wakes the relay at commit; the payload is irrelevant (notifications are coalesced).
    PERFORM pg_notify('parley_outbox', '');
    RETURN NULL;
END;
$$;
