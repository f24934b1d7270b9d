-- The SFU node each call's media goes through (NULL: none was in the directory), so api replicas
-- find the live calls of a node that died and move them.
ALTER TABLE calls ADD COLUMN sfu_node TEXT;
CREATE INDEX calls_live_by_node ON calls (sfu_node) WHERE status IN ('ringing', 'active');
