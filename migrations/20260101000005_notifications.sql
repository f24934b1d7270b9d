-- Who is connected right now (one row per open WebSocket, refreshed by its heartbeat): runtime
-- state, not derived from events. The feed projection reads it to notify offline members.
CREATE TABLE presence
(
    connection_id uuid PRIMARY KEY,
    user_id       uuid        NOT NULL,
    last_seen     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX presence_user ON presence (user_id, last_seen);

-- Notifications, written by the feed projection; reads and deletions come from Inbox events.
CREATE TABLE notifications
(
    id         uuid PRIMARY KEY,
    user_id    uuid        NOT NULL,
    kind       text        NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    read       boolean     NOT NULL DEFAULT false
);
CREATE INDEX notifications_user ON notifications (user_id, created_at DESC, id DESC);
