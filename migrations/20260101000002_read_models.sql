-- Read side. Every table here is derived from the event store and can be rebuilt from it
-- (`parley-projections rebuild`); nothing else writes to them.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- How far each projection has got: the last JetStream stream sequence it applied, written in the
-- same transaction as the read-model change.
CREATE TABLE projection_checkpoints
(
    projection      text PRIMARY KEY,
    stream_sequence bigint      NOT NULL,
    event_position  bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The last event sequence each projection applied per aggregate: makes re-delivery harmless and
-- lets the projector notice (and fill from the event store) a gap.
CREATE TABLE projection_versions
(
    projection     text   NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    version        bigint NOT NULL,
    PRIMARY KEY (projection, aggregate_type, aggregate_id)
);

CREATE TABLE users
(
    id              uuid PRIMARY KEY,
    name            text        NOT NULL,
    email           text        NOT NULL,
    status          text        NOT NULL DEFAULT '',
    avatar_media_id uuid,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE INDEX users_name_trgm ON users USING gin (lower(name) gin_trgm_ops);
CREATE INDEX users_status_trgm ON users USING gin (lower(status) gin_trgm_ops);
CREATE INDEX users_name_id ON users (lower(name), id);
