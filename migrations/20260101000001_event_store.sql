-- The event store: the source of truth. Layout as `postgres-es` expects it, plus a global
-- position so that the relay and projection rebuilds can read events in commit order.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Not written by postgres-es: filled from the sequence at insert.
    position       bigserial                    NOT NULL UNIQUE,
    recorded_at    timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Transactional outbox: a row per event not yet acknowledged by JetStream. Written by a trigger in
-- the same transaction as the event, so a commit can never be missed by the relay; the relay deletes
-- rows once JetStream has acknowledged them.
CREATE TABLE outbox
(
    position bigint PRIMARY KEY REFERENCES events (position)
);

-- One account per email address, enforced in the same transaction as the `UserRegistered` event:
-- a second registration with the same address fails its commit (unique violation), never a racy read.
CREATE TABLE user_emails
(
    email   text PRIMARY KEY,
    user_id uuid NOT NULL UNIQUE
);

CREATE FUNCTION events_after_insert() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO outbox (position) VALUES (NEW.position);
    IF NEW.aggregate_type = 'User' AND NEW.event_type = 'UserRegistered' THEN
        INSERT INTO user_emails (email, user_id)
        VALUES (lower(NEW.payload -> 'UserRegistered' ->> 'email'), NEW.aggregate_id::uuid);
    END IF;
    -- Wakes the relay at commit; the payload is irrelevant (notifications are coalesced).
    PERFORM pg_notify('parley_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_after_insert
    AFTER INSERT
    ON events
    FOR EACH ROW
EXECUTE FUNCTION events_after_insert();
