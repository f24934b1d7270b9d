-- A member sees a chat's messages from the point they joined: each membership row carries the
-- first `seq` its member may see (set by the `chats` and `feed` projections from the membership
-- events; a re-added member's row starts again at the re-add). Every read path filters on it.
ALTER TABLE chat_members ADD COLUMN visible_from_seq bigint NOT NULL DEFAULT 1;
ALTER TABLE feed_members ADD COLUMN visible_from_seq bigint NOT NULL DEFAULT 1;

-- Memberships from before this migration start where the `Chat` aggregate starts them when it
-- replays their events: at the chat's creation for its founders, else right after the last
-- message sent before the membership's latest start (MembersAdded or MemberJoined). Nothing
-- before that counts as unread.
WITH starts AS (
    SELECT DISTINCT ON (e.aggregate_id, joined.user_id)
           e.aggregate_id::uuid AS chat_id,
           joined.user_id,
           CASE WHEN e.event_type = 'ChatCreated' THEN 1
                ELSE 1 + COALESCE((SELECT (s.payload -> 'MessageSent' ->> 'seq')::bigint FROM events s
                                   WHERE s.aggregate_type = 'Chat' AND s.aggregate_id = e.aggregate_id
                                     AND s.sequence < e.sequence AND s.event_type = 'MessageSent'
                                   ORDER BY s.sequence DESC LIMIT 1), 0)
           END AS visible_from_seq
    FROM events e
    CROSS JOIN LATERAL (
        SELECT (m ->> 'user_id')::uuid AS user_id
        FROM json_array_elements(e.payload -> e.event_type -> 'members') AS m
        WHERE e.event_type IN ('ChatCreated', 'MembersAdded')
        UNION ALL
        SELECT (e.payload -> 'MemberJoined' ->> 'user_id')::uuid WHERE e.event_type = 'MemberJoined'
    ) joined
    WHERE e.aggregate_type = 'Chat' AND e.event_type IN ('ChatCreated', 'MembersAdded', 'MemberJoined')
    ORDER BY e.aggregate_id, joined.user_id, e.sequence DESC
),
chat_rows AS (
    UPDATE chat_members cm
    SET visible_from_seq = s.visible_from_seq, read_up_to = GREATEST(cm.read_up_to, s.visible_from_seq - 1)
    FROM starts s
    WHERE cm.chat_id = s.chat_id AND cm.user_id = s.user_id
)
UPDATE feed_members fm
SET visible_from_seq = s.visible_from_seq
FROM starts s
WHERE fm.chat_id = s.chat_id AND fm.user_id = s.user_id;
