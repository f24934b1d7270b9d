-- Feed frames carry their data in full (a `message.created` frame holds the message as sent), so
-- a WebSocket needs no query per frame. `message_id` ties a message's frames to its later deletion
-- (tombstone for everyone, removal for one member).
ALTER TABLE user_feed ADD COLUMN message_id uuid;
CREATE INDEX user_feed_message ON user_feed (message_id) WHERE message_id IS NOT NULL;
