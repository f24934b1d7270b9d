-- Presence by replica: a connection's row names the api replica holding it, and that replica's
-- row says it is alive, so keeping 100,000 sockets present writes one row per replica per
-- heartbeat instead of one per socket. Rows without a replica (from replicas before this
-- migration) keep their own `last_seen`.
CREATE TABLE presence_replicas
(
    replica_id uuid PRIMARY KEY,
    last_seen  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE presence ADD COLUMN replica_id uuid;
