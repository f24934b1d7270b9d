-- Media. Read side: each upload (what GET /media/{id} checks and serves) and which messages carry
-- which media (written by the chats projection only for messages that have some), for access
-- checks and for erasing the media of messages deleted for everyone.

CREATE TABLE media
(
    id                uuid PRIMARY KEY,
    owner_id          uuid        NOT NULL,
    size              bigint      NOT NULL,
    sha256            text        NOT NULL,
    content_type      text        NOT NULL,
    storage_key       text        NOT NULL,
    created_at        timestamptz NOT NULL,
    deleted_at        timestamptz,
    object_removed_at timestamptz
);
CREATE INDEX media_to_remove ON media (deleted_at) WHERE deleted_at IS NOT NULL AND object_removed_at IS NULL;
CREATE INDEX media_live ON media (created_at) WHERE deleted_at IS NULL;

CREATE TABLE message_media
(
    media_id   uuid    NOT NULL,
    chat_id    uuid    NOT NULL,
    message_id uuid    NOT NULL,
    deleted    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (media_id, message_id)
);
CREATE INDEX message_media_message ON message_media (message_id);
CREATE INDEX message_media_deleted ON message_media (media_id) WHERE deleted;

CREATE INDEX users_avatar ON users (avatar_media_id) WHERE avatar_media_id IS NOT NULL;
