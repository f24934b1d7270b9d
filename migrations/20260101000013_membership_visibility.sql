-- A member sees a chat's messages from the point they joined: each membership row carries the
-- first `seq` its member may see (set by the `chats` and `feed` projections from the membership
-- events; a re-added member's row starts again at the re-add). Every read path filters on it.
-- Rows from before this migration get 1 (what their members could already see); rebuilding the
-- `chats` and `feed` projections recomputes them from the events.
ALTER TABLE chat_members ADD COLUMN visible_from_seq bigint NOT NULL DEFAULT 1;
ALTER TABLE feed_members ADD COLUMN visible_from_seq bigint NOT NULL DEFAULT 1;
