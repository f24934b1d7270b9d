-- The events trigger no longer does two things for the api's commit statement:
-- - a sent message's idempotency row (`chat_client_messages`) now comes from the statement itself,
--   which has it in hand. Reading it back out of the stored event's JSON was the trigger's largest
--   cost per message (`pg_stat_statements`: ~27 µs of about 30 µs per message under load);
-- - the `parley_outbox` notification is gone: each api process's relay is woken in process by its
--   own commits, and waits for another relay's turn instead of skipping it (eventbus/src/relay.rs),
--   so no commit needs to wake other processes. Every notification had woken every relay.
-- A commit statement that writes the idempotency rows says so with the transaction-local setting
-- `parley.commit_lookups`; for any other writer (an api replica from before this migration, during
-- a rolling update) the trigger still writes them and notifies, so no idempotency row is missed
-- and old relays are still woken meanwhile.
-- The rest is unchanged from 20260101000009_calls.sql.
CREATE OR REPLACE FUNCTION events_after_insert_statement() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO outbox (position) SELECT position FROM inserted ORDER BY position;

    IF current_setting('parley.commit_lookups', true) IS DISTINCT FROM 'on' THEN
        INSERT INTO chat_client_messages (chat_id, sender_id, client_msg_id, message_id, seq)
        SELECT aggregate_id::uuid, m.sender_id, m.client_msg_id, m.message_id, m.seq
        FROM inserted,
             json_to_record(payload -> 'MessageSent') AS m(sender_id uuid, client_msg_id text, message_id uuid, seq bigint)
        WHERE aggregate_type = 'Chat' AND event_type = 'MessageSent';
        PERFORM pg_notify('parley_outbox', '');
    END IF;

    INSERT INTO user_emails (email, user_id)
    SELECT lower(payload -> 'UserRegistered' ->> 'email'), aggregate_id::uuid
    FROM inserted WHERE aggregate_type = 'User' AND event_type = 'UserRegistered';

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

    RETURN NULL;
END;
$$;
