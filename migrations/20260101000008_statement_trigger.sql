-- The events trigger, set-based: one call per INSERT statement (the api commits many commands'
-- events in one statement) instead of one plpgsql call and one or two nested inserts per event,
-- which had become most of the database's cost per message. Same effects as before, in the same
-- transaction: outbox rows, the write side's lookup tables, and key deletion for crypto-shredding.
CREATE FUNCTION events_after_insert_statement() RETURNS trigger
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

    -- Wakes the relay at commit; the payload is irrelevant (notifications are coalesced).
    PERFORM pg_notify('parley_outbox', '');
    RETURN NULL;
END;
$$;

DROP TRIGGER events_after_insert ON events;
DROP FUNCTION events_after_insert();

CREATE TRIGGER events_after_insert
    AFTER INSERT
    ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT
EXECUTE FUNCTION events_after_insert_statement();

-- Outbox rows are only ever written by the trigger above, from rows it just saw inserted: the
-- foreign key's per-row check bought nothing.
ALTER TABLE outbox DROP CONSTRAINT outbox_position_fkey;
