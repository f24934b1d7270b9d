-- A message's `message.created` frame is stored once (`feed_messages`) and each member's feed row
-- points at it (`message_id`, `data` NULL), instead of every member's row holding its own copy: a
-- message to a group of ten had written ten copies of the frame and ten entries in
-- `user_feed_message`, the bulk of the database's work per message. Deleting a message for
-- everyone rewrites its one shared frame; hiding it for one member is recorded in `feed_hidden`
-- rather than searched for in that member's feed. Readers take
-- `COALESCE(user_feed.data, feed_messages.data)` and leave out what `feed_hidden` hides.
--
-- Rows written before keep their own copy (a rewrite of the whole feed would be a long lock for
-- nothing a reader can tell apart); only they stay indexed by message, for deletions.
--
-- Rollout: an api replica of the previous release reads `data` as NOT NULL, so its replays fail
-- (its sockets close, and the clients reconnect) once shared frames are written; and a projector
-- of the previous release would delete a shared frame's message in the copies only. So the
-- projectors are replaced all at once (`k8s/base/projections.yaml`: `Recreate`), after the api.
CREATE TABLE feed_messages
(
    message_id uuid PRIMARY KEY,
    chat_id    uuid  NOT NULL,
    data       jsonb NOT NULL
);

CREATE TABLE feed_hidden
(
    user_id    uuid NOT NULL,
    message_id uuid NOT NULL,
    PRIMARY KEY (user_id, message_id)
);

ALTER TABLE user_feed ALTER COLUMN data DROP NOT NULL;
CREATE INDEX user_feed_message_copy ON user_feed (message_id) WHERE message_id IS NOT NULL AND data IS NOT NULL;
DROP INDEX user_feed_message;
