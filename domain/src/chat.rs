//! The `Chat` aggregate: a direct chat or a group, its members and roles, invites, and the
//! ordered stream of its messages (per-chat `seq` without gaps), read marks and deletions.
//!
//! Membership rights:
//! - a member sees the chat's messages from the point they joined: each membership starts at a
//!   `visible_from_seq` (the first `seq` sent after the join; a re-added member's starts again at
//!   the re-add), recorded in the membership events, and every read path applies it;
//! - an invite code expires (`DEFAULT_INVITE_TTL_SECS` after creation unless the admin asks for
//!   less) and can be revoked; a group has one live code at a time (creating a code revokes the
//!   previous ones, like WhatsApp's "reset link");
//! - a member removed by an admin cannot rejoin by code until an admin adds them again (one who
//!   left on their own may);
//! - a reply names a message of the same chat that the sender can see (a tombstone of a message
//!   deleted for everyone is allowed: it shows as deleted).
//!
//! The state kept is small and bounded (members, counters, invites): message bodies are never
//! needed to decide a command, so a chat with millions of messages loads as fast as a new one
//! (the api stores chats with `postgres-es`'s aggregate store, one row per chat).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sealed::SealedBody;

pub const MAX_GROUP_MEMBERS: usize = 1024;
/// Members one request may add; bigger additions are split by the client.
pub const MAX_MEMBERS_PER_REQUEST: usize = 256;
pub const GROUP_NAME_MAX_CHARS: usize = 100;
pub const ALGORITHM_MAX_CHARS: usize = 64;
pub const CLIENT_MSG_ID_MAX_CHARS: usize = 128;
pub const MAX_MEDIA_PER_MESSAGE: usize = 32;
/// How long an invite code is valid unless its admin asks for less; also the longest allowed.
pub const DEFAULT_INVITE_TTL_SECS: i64 = 7 * 24 * 3600;
/// The shortest validity an admin may ask for.
pub const MIN_INVITE_TTL_SECS: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteScope {
    Everyone,
    Me,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub user_id: Uuid,
    pub role: Role,
}

/// The message a new one replies to, as the handler found it in this chat's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyRef {
    pub message_id: Uuid,
    pub seq: i64,
}

/// What a handler knows about an existing message when it asks to delete it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRef {
    pub message_id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChatCommand {
    Create {
        chat_id: Uuid,
        kind: ChatKind,
        creator_id: Uuid,
        name: Option<String>,
        member_ids: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    AddMembers {
        actor_id: Uuid,
        user_ids: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    RemoveMember {
        actor_id: Uuid,
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Makes a group member an admin, or an admin a plain member (admins; a group keeps one).
    ChangeRole {
        actor_id: Uuid,
        user_id: Uuid,
        role: Role,
        at: DateTime<Utc>,
    },
    /// Creates the group's invite code, revoking any earlier one.
    CreateInvite {
        actor_id: Uuid,
        code: String,
        /// Seconds the code stays valid: `MIN_INVITE_TTL_SECS..=DEFAULT_INVITE_TTL_SECS`
        /// (`None`: the default).
        ttl_secs: Option<i64>,
        at: DateTime<Utc>,
    },
    /// Revokes every live invite code of the group.
    RevokeInvites {
        actor_id: Uuid,
        at: DateTime<Utc>,
    },
    Join {
        user_id: Uuid,
        code: String,
        at: DateTime<Utc>,
    },
    SendMessage {
        message_id: Uuid,
        sender_id: Uuid,
        /// The sending session's device, as the server knows it.
        sender_device_id: Option<Uuid>,
        client_msg_id: String,
        body: SealedBody,
        algorithm: String,
        media_ids: Vec<Uuid>,
        /// The replied-to message as found in this chat (the handler refuses an id it does not
        /// find there); the aggregate decides whether the sender may see it.
        reply_to: Option<ReplyRef>,
        at: DateTime<Utc>,
    },
    MarkRead {
        user_id: Uuid,
        up_to_seq: i64,
        at: DateTime<Utc>,
    },
    DeleteMessage {
        actor_id: Uuid,
        message: MessageRef,
        scope: DeleteScope,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChatEvent {
    ChatCreated {
        chat_id: Uuid,
        kind: ChatKind,
        name: Option<String>,
        created_by: Uuid,
        members: Vec<MemberEntry>,
        created_at: DateTime<Utc>,
    },
    MembersAdded {
        added_by: Uuid,
        members: Vec<MemberEntry>,
        at: DateTime<Utc>,
        /// The first `seq` the added members see. Absent in events recorded before memberships
        /// had a starting point (projections then take the chat's next `seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visible_from_seq: Option<i64>,
    },
    /// `removed_by == user_id` means the member left.
    MemberRemoved {
        user_id: Uuid,
        removed_by: Uuid,
        at: DateTime<Utc>,
    },
    MemberRoleChanged {
        user_id: Uuid,
        role: Role,
        at: DateTime<Utc>,
    },
    InviteCreated {
        code: String,
        created_by: Uuid,
        at: DateTime<Utc>,
        /// Absent in events recorded before codes expired: those expire
        /// `DEFAULT_INVITE_TTL_SECS` after `at`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
    },
    /// The codes stop working (an admin revoked them, or created a new code).
    InvitesRevoked {
        codes: Vec<String>,
        revoked_by: Uuid,
        at: DateTime<Utc>,
    },
    MemberJoined {
        user_id: Uuid,
        invite_code: String,
        at: DateTime<Utc>,
        /// As in `MembersAdded`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visible_from_seq: Option<i64>,
    },
    MessageSent {
        message_id: Uuid,
        sender_id: Uuid,
        /// The device (login session) that sent it; none for messages from before devices.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender_device_id: Option<Uuid>,
        seq: i64,
        client_msg_id: String,
        /// The client's ciphertext, sealed for crypto-shredding (see `sealed`).
        body: SealedBody,
        algorithm: String,
        #[serde(default)]
        media_ids: Vec<Uuid>,
        #[serde(default)]
        reply_to: Option<Uuid>,
        sent_at: DateTime<Utc>,
    },
    /// `user_id` has read every message up to `seq`. Stored as `ReadUpTo`, its first name.
    #[serde(rename = "ReadUpTo")]
    MarkedRead {
        user_id: Uuid,
        seq: i64,
        at: DateTime<Utc>,
    },
    /// Deleted for everyone: the body's key is destroyed with this event.
    MessageDeleted {
        message_id: Uuid,
        seq: i64,
        deleted_by: Uuid,
        at: DateTime<Utc>,
    },
    /// Hidden from one member's history.
    MessageHidden {
        message_id: Uuid,
        seq: i64,
        user_id: Uuid,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ChatEvent {
    fn event_type(&self) -> String {
        match self {
            ChatEvent::ChatCreated { .. } => "ChatCreated",
            ChatEvent::MembersAdded { .. } => "MembersAdded",
            ChatEvent::MemberRemoved { .. } => "MemberRemoved",
            ChatEvent::MemberRoleChanged { .. } => "MemberRoleChanged",
            ChatEvent::InviteCreated { .. } => "InviteCreated",
            ChatEvent::InvitesRevoked { .. } => "InvitesRevoked",
            ChatEvent::MemberJoined { .. } => "MemberJoined",
            ChatEvent::MessageSent { .. } => "MessageSent",
            ChatEvent::MarkedRead { .. } => "ReadUpTo",
            ChatEvent::MessageDeleted { .. } => "MessageDeleted",
            ChatEvent::MessageHidden { .. } => "MessageHidden",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("chat already exists")]
    AlreadyExists,
    /// Also what non-members get: a chat you are not in does not exist for you.
    #[error("chat not found")]
    NotFound,
    #[error("only group admins may do this")]
    NotAdmin,
    #[error("only the sender may delete a message for everyone")]
    NotSender,
    #[error("a direct chat is between you and exactly one other user")]
    InvalidDirectChat,
    #[error("this is not possible in a direct chat")]
    NotAGroup,
    #[error("group name must be 1 to {GROUP_NAME_MAX_CHARS} characters")]
    InvalidName,
    #[error("at most {MAX_MEMBERS_PER_REQUEST} members per request and {MAX_GROUP_MEMBERS} per group")]
    TooManyMembers,
    #[error("that user is not a member")]
    NotAMember,
    #[error("invite code is not valid")]
    InvalidInvite,
    #[error("algorithm must be 1 to {ALGORITHM_MAX_CHARS} characters")]
    InvalidAlgorithm,
    #[error("client_msg_id must be 1 to {CLIENT_MSG_ID_MAX_CHARS} characters")]
    InvalidClientMsgId,
    #[error("at most {MAX_MEDIA_PER_MESSAGE} media per message")]
    TooManyMedia,
    #[error("up_to_seq must be between 1 and the chat's last seq")]
    InvalidSeq,
    #[error("invite expiry must be {MIN_INVITE_TTL_SECS} to {DEFAULT_INVITE_TTL_SECS} seconds")]
    InvalidInviteTtl,
    #[error("reply_to must name a message of this chat that you can see")]
    InvalidReplyTo,
    #[error("a group keeps at least one admin: make another member admin first")]
    LastAdmin,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub id: Option<Uuid>,
    pub kind: Option<ChatKind>,
    pub members: BTreeMap<Uuid, Role>,
    pub read_up_to: BTreeMap<Uuid, i64>,
    pub last_seq: i64,
    /// Codes of snapshots taken before invites expired; no longer read (such codes are invalid,
    /// having no known expiry) nor written.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub invite_codes: BTreeSet<String>,
    /// Live invite codes and when each expires.
    #[serde(default)]
    pub invites: BTreeMap<String, DateTime<Utc>>,
    /// Each member's first visible `seq` (a member missing here, from a snapshot taken before
    /// memberships had a starting point, sees from 1).
    #[serde(default)]
    pub visible_from: BTreeMap<Uuid, i64>,
    /// Users removed by an admin: they may not rejoin by code until an admin adds them again.
    #[serde(default)]
    pub barred: BTreeSet<Uuid>,
}

fn normalize_group_name(name: Option<&str>) -> Result<String, ChatError> {
    let name = name.map(str::trim).unwrap_or_default();
    let chars = name.chars().count();
    if chars == 0 || chars > GROUP_NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(ChatError::InvalidName);
    }
    Ok(name.to_owned())
}

fn bounded(text: &str, max: usize, error: ChatError) -> Result<(), ChatError> {
    let chars = text.chars().count();
    if chars == 0 || chars > max || text.chars().any(char::is_control) {
        return Err(error);
    }
    Ok(())
}

impl Chat {
    fn ensure_member(&self, user_id: Uuid) -> Result<(), ChatError> {
        if self.id.is_none() || !self.members.contains_key(&user_id) {
            return Err(ChatError::NotFound);
        }
        Ok(())
    }

    /// The first `seq` `user_id` may see (1 for a member from before starting points existed).
    pub fn visible_from_seq(&self, user_id: Uuid) -> i64 {
        self.visible_from.get(&user_id).copied().unwrap_or(1)
    }

    fn ensure_group_admin(&self, user_id: Uuid) -> Result<(), ChatError> {
        self.ensure_member(user_id)?;
        if self.kind != Some(ChatKind::Group) {
            return Err(ChatError::NotAGroup);
        }
        if self.members.get(&user_id) != Some(&Role::Admin) {
            return Err(ChatError::NotAdmin);
        }
        Ok(())
    }

    fn create(
        &self,
        chat_id: Uuid,
        kind: ChatKind,
        creator_id: Uuid,
        name: Option<String>,
        member_ids: Vec<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<ChatEvent, ChatError> {
        if self.id.is_some() {
            return Err(ChatError::AlreadyExists);
        }
        let others: BTreeSet<Uuid> = member_ids.into_iter().filter(|id| *id != creator_id).collect();
        let (name, members) = match kind {
            ChatKind::Direct => {
                if others.len() != 1 {
                    return Err(ChatError::InvalidDirectChat);
                }
                let members = std::iter::once(creator_id)
                    .chain(others)
                    .map(|user_id| MemberEntry { user_id, role: Role::Member });
                (None, members.collect())
            }
            ChatKind::Group => {
                let name = normalize_group_name(name.as_deref())?;
                if others.len() > MAX_MEMBERS_PER_REQUEST {
                    return Err(ChatError::TooManyMembers);
                }
                let mut members = vec![MemberEntry { user_id: creator_id, role: Role::Admin }];
                members.extend(others.into_iter().map(|user_id| MemberEntry { user_id, role: Role::Member }));
                (Some(name), members)
            }
        };
        Ok(ChatEvent::ChatCreated { chat_id, kind, name, created_by: creator_id, members, created_at: at })
    }

    /// The events for `user_id` leaving or being removed, including handing admin rights on when
    /// the last admin leaves a group that still has members.
    fn remove(&self, actor_id: Uuid, user_id: Uuid, at: DateTime<Utc>) -> Result<Vec<ChatEvent>, ChatError> {
        self.ensure_member(actor_id)?;
        if self.kind != Some(ChatKind::Group) {
            return Err(ChatError::NotAGroup);
        }
        if actor_id != user_id {
            self.ensure_group_admin(actor_id)?;
        }
        if !self.members.contains_key(&user_id) {
            return Err(ChatError::NotAMember);
        }
        let mut events = vec![ChatEvent::MemberRemoved { user_id, removed_by: actor_id, at }];
        let admins_left = self.members.iter().filter(|(id, role)| **id != user_id && **role == Role::Admin).count();
        if admins_left == 0 {
            if let Some(successor) = self.members.keys().find(|id| **id != user_id) {
                events.push(ChatEvent::MemberRoleChanged { user_id: *successor, role: Role::Admin, at });
            }
        }
        Ok(events)
    }

    fn change_role(
        &self,
        actor_id: Uuid,
        user_id: Uuid,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<Vec<ChatEvent>, ChatError> {
        self.ensure_group_admin(actor_id)?;
        let current = self.members.get(&user_id).ok_or(ChatError::NotAMember)?;
        if *current == role {
            return Ok(vec![]);
        }
        let admins = self.members.values().filter(|role| **role == Role::Admin).count();
        if role == Role::Member && admins == 1 {
            return Err(ChatError::LastAdmin);
        }
        Ok(vec![ChatEvent::MemberRoleChanged { user_id, role, at }])
    }

    /// Whether `user_id`, a member, may see the message at `seq` of this chat.
    fn can_see(&self, user_id: Uuid, seq: i64) -> bool {
        seq >= self.visible_from_seq(user_id) && seq >= 1 && seq <= self.last_seq
    }

    /// The event revoking every live code, if there is any.
    fn revoke_invites(&self, actor_id: Uuid, at: DateTime<Utc>) -> Option<ChatEvent> {
        if self.invites.is_empty() {
            return None;
        }
        Some(ChatEvent::InvitesRevoked { codes: self.invites.keys().cloned().collect(), revoked_by: actor_id, at })
    }

    fn create_invite(
        &self,
        actor_id: Uuid,
        code: String,
        ttl_secs: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<Vec<ChatEvent>, ChatError> {
        self.ensure_group_admin(actor_id)?;
        let ttl_secs = ttl_secs.unwrap_or(DEFAULT_INVITE_TTL_SECS);
        if !(MIN_INVITE_TTL_SECS..=DEFAULT_INVITE_TTL_SECS).contains(&ttl_secs) {
            return Err(ChatError::InvalidInviteTtl);
        }
        let expires_at = Some(at + chrono::Duration::seconds(ttl_secs));
        // One live code per group: a new one replaces (revokes) the previous ones.
        let mut events: Vec<ChatEvent> = self.revoke_invites(actor_id, at).into_iter().collect();
        events.push(ChatEvent::InviteCreated { code, created_by: actor_id, at, expires_at });
        Ok(events)
    }

    fn join(&self, user_id: Uuid, code: String, at: DateTime<Utc>) -> Result<Vec<ChatEvent>, ChatError> {
        let live = self.invites.get(&code).is_some_and(|expires_at| at < *expires_at);
        // Expired, revoked, unknown and "removed by an admin" get the same answer: nothing about
        // the group leaks to someone who may not join it.
        if self.id.is_none() || !live || self.barred.contains(&user_id) {
            return Err(ChatError::InvalidInvite);
        }
        if self.members.contains_key(&user_id) {
            Ok(vec![])
        } else if self.members.len() >= MAX_GROUP_MEMBERS {
            Err(ChatError::TooManyMembers)
        } else {
            Ok(vec![ChatEvent::MemberJoined {
                user_id,
                invite_code: code,
                at,
                visible_from_seq: Some(self.last_seq + 1),
            }])
        }
    }

    /// A membership starts: from `visible_from_seq` if recorded, else from the next message.
    fn start_membership(&mut self, user_id: Uuid, role: Role, visible_from_seq: Option<i64>) {
        let from = visible_from_seq.unwrap_or(self.last_seq + 1);
        self.members.insert(user_id, role);
        self.visible_from.insert(user_id, from);
        // Nothing before the join is unread for them.
        self.read_up_to.insert(user_id, from - 1);
    }
}

impl Aggregate for Chat {
    const TYPE: &'static str = "Chat";
    type Command = ChatCommand;
    type Event = ChatEvent;
    type Error = ChatError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            ChatCommand::Create { chat_id, kind, creator_id, name, member_ids, at } => {
                vec![self.create(chat_id, kind, creator_id, name, member_ids, at)?]
            }
            ChatCommand::AddMembers { actor_id, user_ids, at } => {
                self.ensure_group_admin(actor_id)?;
                let new: BTreeSet<Uuid> = user_ids.into_iter().filter(|id| !self.members.contains_key(id)).collect();
                if new.len() > MAX_MEMBERS_PER_REQUEST || self.members.len() + new.len() > MAX_GROUP_MEMBERS {
                    return Err(ChatError::TooManyMembers);
                }
                if new.is_empty() {
                    vec![]
                } else {
                    let members = new.into_iter().map(|user_id| MemberEntry { user_id, role: Role::Member }).collect();
                    let visible_from_seq = Some(self.last_seq + 1);
                    vec![ChatEvent::MembersAdded { added_by: actor_id, members, at, visible_from_seq }]
                }
            }
            ChatCommand::RemoveMember { actor_id, user_id, at } => self.remove(actor_id, user_id, at)?,
            ChatCommand::ChangeRole { actor_id, user_id, role, at } => self.change_role(actor_id, user_id, role, at)?,
            ChatCommand::CreateInvite { actor_id, code, ttl_secs, at } => {
                self.create_invite(actor_id, code, ttl_secs, at)?
            }
            ChatCommand::RevokeInvites { actor_id, at } => {
                self.ensure_group_admin(actor_id)?;
                self.revoke_invites(actor_id, at).into_iter().collect()
            }
            ChatCommand::Join { user_id, code, at } => self.join(user_id, code, at)?,
            ChatCommand::SendMessage {
                message_id,
                sender_id,
                sender_device_id,
                client_msg_id,
                body,
                algorithm,
                media_ids,
                reply_to,
                at,
            } => {
                self.ensure_member(sender_id)?;
                bounded(&algorithm, ALGORITHM_MAX_CHARS, ChatError::InvalidAlgorithm)?;
                bounded(&client_msg_id, CLIENT_MSG_ID_MAX_CHARS, ChatError::InvalidClientMsgId)?;
                if media_ids.len() > MAX_MEDIA_PER_MESSAGE {
                    return Err(ChatError::TooManyMedia);
                }
                let reply_to = match reply_to {
                    None => None,
                    Some(reply) if self.can_see(sender_id, reply.seq) => Some(reply.message_id),
                    Some(_) => return Err(ChatError::InvalidReplyTo),
                };
                vec![ChatEvent::MessageSent {
                    message_id,
                    sender_id,
                    sender_device_id,
                    seq: self.last_seq + 1,
                    client_msg_id,
                    body,
                    algorithm,
                    media_ids,
                    reply_to,
                    sent_at: at,
                }]
            }
            ChatCommand::MarkRead { user_id, up_to_seq, at } => {
                self.ensure_member(user_id)?;
                if up_to_seq < 1 || up_to_seq > self.last_seq {
                    return Err(ChatError::InvalidSeq);
                }
                // A high-water mark: marking an older message read again changes nothing.
                if self.read_up_to.get(&user_id).is_some_and(|read| *read >= up_to_seq) {
                    vec![]
                } else {
                    vec![ChatEvent::MarkedRead { user_id, seq: up_to_seq, at }]
                }
            }
            ChatCommand::DeleteMessage { actor_id, message, scope, at } => {
                self.ensure_member(actor_id)?;
                if !self.can_see(actor_id, message.seq) {
                    return Err(ChatError::NotFound);
                }
                match scope {
                    DeleteScope::Everyone if message.sender_id != actor_id => return Err(ChatError::NotSender),
                    DeleteScope::Everyone => vec![ChatEvent::MessageDeleted {
                        message_id: message.message_id,
                        seq: message.seq,
                        deleted_by: actor_id,
                        at,
                    }],
                    DeleteScope::Me => {
                        vec![ChatEvent::MessageHidden {
                            message_id: message.message_id,
                            seq: message.seq,
                            user_id: actor_id,
                            at,
                        }]
                    }
                }
            }
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ChatEvent::ChatCreated { chat_id, kind, members, .. } => {
                self.id = Some(chat_id);
                self.kind = Some(kind);
                for member in members {
                    self.start_membership(member.user_id, member.role, Some(1));
                }
            }
            ChatEvent::MembersAdded { members, visible_from_seq, .. } => {
                for member in members {
                    // An admin adding someone lifts a removal's bar.
                    self.barred.remove(&member.user_id);
                    self.start_membership(member.user_id, member.role, visible_from_seq);
                }
            }
            ChatEvent::MemberRemoved { user_id, removed_by, .. } => {
                self.members.remove(&user_id);
                self.read_up_to.remove(&user_id);
                self.visible_from.remove(&user_id);
                if removed_by != user_id {
                    self.barred.insert(user_id);
                }
            }
            ChatEvent::MemberRoleChanged { user_id, role, .. } => {
                if let Some(current) = self.members.get_mut(&user_id) {
                    *current = role;
                }
            }
            ChatEvent::InviteCreated { code, at, expires_at, .. } => {
                let expires_at = expires_at.unwrap_or(at + chrono::Duration::seconds(DEFAULT_INVITE_TTL_SECS));
                self.invites.insert(code, expires_at);
            }
            ChatEvent::InvitesRevoked { codes, .. } => {
                for code in codes {
                    self.invites.remove(&code);
                }
            }
            ChatEvent::MemberJoined { user_id, visible_from_seq, .. } => {
                self.start_membership(user_id, Role::Member, visible_from_seq);
            }
            ChatEvent::MessageSent { seq, sender_id, .. } => {
                self.last_seq = seq;
                // Your own message counts as read by you.
                self.read_up_to.insert(sender_id, seq);
            }
            ChatEvent::MarkedRead { user_id, seq, .. } => {
                self.read_up_to.insert(user_id, seq);
            }
            ChatEvent::MessageDeleted { .. } | ChatEvent::MessageHidden { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type ChatTest = TestFramework<Chat>;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }
    fn user(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }
    fn chat_id() -> Uuid {
        Uuid::from_u128(100)
    }

    #[test]
    fn read_receipts_keep_their_stored_name() {
        let event = ChatEvent::MarkedRead { user_id: user(2), seq: 7, at: at() };
        assert_eq!(event.event_type(), "ReadUpTo");
        let stored = serde_json::json!({"ReadUpTo": {"user_id": user(2), "seq": 7, "at": at()}});
        assert_eq!(serde_json::to_value(&event).ok(), Some(stored.clone()));
        assert_eq!(serde_json::from_value::<ChatEvent>(stored).ok(), Some(event));
    }
    fn body() -> SealedBody {
        SealedBody { nonce: "n".into(), data: "d".into() }
    }
    fn group_created() -> ChatEvent {
        ChatEvent::ChatCreated {
            chat_id: chat_id(),
            kind: ChatKind::Group,
            name: Some("Team".into()),
            created_by: user(1),
            members: vec![
                MemberEntry { user_id: user(1), role: Role::Admin },
                MemberEntry { user_id: user(2), role: Role::Member },
            ],
            created_at: at(),
        }
    }
    fn send(sender: u128, client_msg_id: &str) -> ChatCommand {
        ChatCommand::SendMessage {
            message_id: Uuid::from_u128(500),
            sender_id: user(sender),
            sender_device_id: None,
            client_msg_id: client_msg_id.into(),
            body: body(),
            algorithm: "m.megolm.v1".into(),
            media_ids: vec![],
            reply_to: None,
            at: at(),
        }
    }
    fn sent(sender: u128, seq: i64) -> ChatEvent {
        ChatEvent::MessageSent {
            message_id: Uuid::from_u128(500),
            sender_id: user(sender),
            sender_device_id: None,
            seq,
            client_msg_id: "c".into(),
            body: body(),
            algorithm: "m.megolm.v1".into(),
            media_ids: vec![],
            reply_to: None,
            sent_at: at(),
        }
    }

    #[test]
    fn a_group_makes_its_creator_admin_and_ignores_duplicates() {
        ChatTest::with(())
            .given_no_previous_events()
            .when(ChatCommand::Create {
                chat_id: chat_id(),
                kind: ChatKind::Group,
                creator_id: user(1),
                name: Some(" Team ".into()),
                member_ids: vec![user(2), user(2), user(1)],
                at: at(),
            })
            .then_expect_events(vec![group_created()]);
    }

    #[test]
    fn a_direct_chat_needs_exactly_one_other_user() {
        for members in [vec![], vec![user(1)], vec![user(2), user(3)]] {
            ChatTest::with(())
                .given_no_previous_events()
                .when(ChatCommand::Create {
                    chat_id: chat_id(),
                    kind: ChatKind::Direct,
                    creator_id: user(1),
                    name: None,
                    member_ids: members,
                    at: at(),
                })
                .then_expect_error(ChatError::InvalidDirectChat);
        }
    }

    #[test]
    fn groups_need_a_name_and_bounded_membership() {
        ChatTest::with(())
            .given_no_previous_events()
            .when(ChatCommand::Create {
                chat_id: chat_id(),
                kind: ChatKind::Group,
                creator_id: user(1),
                name: Some("  ".into()),
                member_ids: vec![],
                at: at(),
            })
            .then_expect_error(ChatError::InvalidName);
        let crowd: Vec<Uuid> = (10..10 + MAX_MEMBERS_PER_REQUEST as u128 + 1).map(user).collect();
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::AddMembers { actor_id: user(1), user_ids: crowd, at: at() })
            .then_expect_error(ChatError::TooManyMembers);
    }

    #[test]
    fn only_admins_add_and_remove_but_anyone_may_leave() {
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::AddMembers { actor_id: user(2), user_ids: vec![user(3)], at: at() })
            .then_expect_error(ChatError::NotAdmin);
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::AddMembers { actor_id: user(1), user_ids: vec![user(2), user(3)], at: at() })
            .then_expect_events(vec![ChatEvent::MembersAdded {
                added_by: user(1),
                members: vec![MemberEntry { user_id: user(3), role: Role::Member }],
                at: at(),
                visible_from_seq: Some(1),
            }]);
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::RemoveMember { actor_id: user(2), user_id: user(1), at: at() })
            .then_expect_error(ChatError::NotAdmin);
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::RemoveMember { actor_id: user(2), user_id: user(2), at: at() })
            .then_expect_events(vec![ChatEvent::MemberRemoved { user_id: user(2), removed_by: user(2), at: at() }]);
    }

    fn change_role(actor: u128, member: u128, role: Role) -> ChatCommand {
        ChatCommand::ChangeRole { actor_id: user(actor), user_id: user(member), role, at: at() }
    }

    #[test]
    fn admins_promote_and_demote_and_a_group_keeps_one_admin() {
        let promoted = ChatEvent::MemberRoleChanged { user_id: user(2), role: Role::Admin, at: at() };
        ChatTest::with(())
            .given(vec![group_created()])
            .when(change_role(1, 2, Role::Admin))
            .then_expect_events(vec![promoted.clone()]);
        // Already so: nothing to record.
        ChatTest::with(())
            .given(vec![group_created(), promoted.clone()])
            .when(change_role(1, 2, Role::Admin))
            .then_expect_events(vec![]);
        // With two admins, either may step down or demote the other.
        ChatTest::with(())
            .given(vec![group_created(), promoted.clone()])
            .when(change_role(2, 1, Role::Member))
            .then_expect_events(vec![ChatEvent::MemberRoleChanged { user_id: user(1), role: Role::Member, at: at() }]);
        ChatTest::with(())
            .given(vec![group_created()])
            .when(change_role(1, 1, Role::Member))
            .then_expect_error(ChatError::LastAdmin);
    }

    #[test]
    fn only_admins_change_roles_of_members_of_groups() {
        ChatTest::with(())
            .given(vec![group_created()])
            .when(change_role(2, 2, Role::Admin))
            .then_expect_error(ChatError::NotAdmin);
        ChatTest::with(())
            .given(vec![group_created()])
            .when(change_role(1, 3, Role::Admin))
            .then_expect_error(ChatError::NotAMember);
        ChatTest::with(())
            .given(vec![group_created()])
            .when(change_role(3, 2, Role::Admin))
            .then_expect_error(ChatError::NotFound);
        ChatTest::with(())
            .given(vec![ChatEvent::ChatCreated {
                chat_id: chat_id(),
                kind: ChatKind::Direct,
                name: None,
                created_by: user(1),
                members: vec![
                    MemberEntry { user_id: user(1), role: Role::Member },
                    MemberEntry { user_id: user(2), role: Role::Member },
                ],
                created_at: at(),
            }])
            .when(change_role(1, 2, Role::Admin))
            .then_expect_error(ChatError::NotAGroup);
    }

    #[test]
    fn the_last_admin_leaving_hands_over_admin_rights() {
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::RemoveMember { actor_id: user(1), user_id: user(1), at: at() })
            .then_expect_events(vec![
                ChatEvent::MemberRemoved { user_id: user(1), removed_by: user(1), at: at() },
                ChatEvent::MemberRoleChanged { user_id: user(2), role: Role::Admin, at: at() },
            ]);
    }

    #[test]
    fn non_members_cannot_see_or_post() {
        ChatTest::with(()).given(vec![group_created()]).when(send(9, "c")).then_expect_error(ChatError::NotFound);
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::MarkRead { user_id: user(9), up_to_seq: 1, at: at() })
            .then_expect_error(ChatError::NotFound);
        ChatTest::with(()).given_no_previous_events().when(send(1, "c")).then_expect_error(ChatError::NotFound);
    }

    #[test]
    fn messages_get_consecutive_seqs() {
        ChatTest::with(()).given(vec![group_created()]).when(send(2, "c")).then_expect_events(vec![sent(2, 1)]);
        ChatTest::with(())
            .given(vec![group_created(), sent(1, 1), sent(2, 2)])
            .when(send(1, "c"))
            .then_expect_events(vec![sent(1, 3)]);
    }

    #[test]
    fn message_fields_are_bounded() {
        let mut command = send(1, "");
        ChatTest::with(())
            .given(vec![group_created()])
            .when(command.clone())
            .then_expect_error(ChatError::InvalidClientMsgId);
        if let ChatCommand::SendMessage { client_msg_id, algorithm, .. } = &mut command {
            *client_msg_id = "c".into();
            *algorithm = String::new();
        }
        ChatTest::with(()).given(vec![group_created()]).when(command).then_expect_error(ChatError::InvalidAlgorithm);
    }

    #[test]
    fn read_marks_only_move_forward_within_the_chat() {
        let history = vec![group_created(), sent(1, 1), sent(1, 2)];
        ChatTest::with(())
            .given(history.clone())
            .when(ChatCommand::MarkRead { user_id: user(2), up_to_seq: 2, at: at() })
            .then_expect_events(vec![ChatEvent::MarkedRead { user_id: user(2), seq: 2, at: at() }]);
        for bad in [0, 3, -1] {
            ChatTest::with(())
                .given(history.clone())
                .when(ChatCommand::MarkRead { user_id: user(2), up_to_seq: bad, at: at() })
                .then_expect_error(ChatError::InvalidSeq);
        }
        let mut read = history.clone();
        read.push(ChatEvent::MarkedRead { user_id: user(2), seq: 2, at: at() });
        ChatTest::with(())
            .given(read)
            .when(ChatCommand::MarkRead { user_id: user(2), up_to_seq: 1, at: at() })
            .then_expect_events(vec![]);
        // The sender has read their own messages.
        ChatTest::with(())
            .given(history)
            .when(ChatCommand::MarkRead { user_id: user(1), up_to_seq: 2, at: at() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn only_the_sender_deletes_for_everyone_but_anyone_hides_for_themselves() {
        let message = MessageRef { message_id: Uuid::from_u128(500), seq: 1, sender_id: user(1) };
        let history = vec![group_created(), sent(1, 1)];
        ChatTest::with(())
            .given(history.clone())
            .when(ChatCommand::DeleteMessage {
                actor_id: user(2),
                message: message.clone(),
                scope: DeleteScope::Everyone,
                at: at(),
            })
            .then_expect_error(ChatError::NotSender);
        ChatTest::with(())
            .given(history.clone())
            .when(ChatCommand::DeleteMessage {
                actor_id: user(1),
                message: message.clone(),
                scope: DeleteScope::Everyone,
                at: at(),
            })
            .then_expect_events(vec![ChatEvent::MessageDeleted {
                message_id: message.message_id,
                seq: 1,
                deleted_by: user(1),
                at: at(),
            }]);
        ChatTest::with(())
            .given(history)
            .when(ChatCommand::DeleteMessage {
                actor_id: user(2),
                message: message.clone(),
                scope: DeleteScope::Me,
                at: at(),
            })
            .then_expect_events(vec![ChatEvent::MessageHidden {
                message_id: message.message_id,
                seq: 1,
                user_id: user(2),
                at: at(),
            }]);
    }

    fn later(secs: i64) -> DateTime<Utc> {
        at() + chrono::Duration::seconds(secs)
    }
    fn invite(code: &str, ttl_secs: i64) -> ChatEvent {
        ChatEvent::InviteCreated { code: code.into(), created_by: user(1), at: at(), expires_at: Some(later(ttl_secs)) }
    }
    fn join(who: u128, code: &str, when: DateTime<Utc>) -> ChatCommand {
        ChatCommand::Join { user_id: user(who), code: code.into(), at: when }
    }
    fn joined(who: u128, from: i64, when: DateTime<Utc>) -> ChatEvent {
        ChatEvent::MemberJoined {
            user_id: user(who),
            invite_code: "abc".into(),
            at: when,
            visible_from_seq: Some(from),
        }
    }

    #[test]
    fn invites_let_people_join_once() {
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::CreateInvite { actor_id: user(2), code: "x".into(), ttl_secs: None, at: at() })
            .then_expect_error(ChatError::NotAdmin);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60)])
            .when(join(3, "abc", at()))
            .then_expect_events(vec![joined(3, 1, at())]);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60)])
            .when(join(2, "abc", at()))
            .then_expect_events(vec![]);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60)])
            .when(join(3, "nope", at()))
            .then_expect_error(ChatError::InvalidInvite);
    }

    #[test]
    fn invites_expire_default_to_seven_days_and_are_bounded() {
        ChatTest::with(())
            .given(vec![group_created()])
            .when(ChatCommand::CreateInvite { actor_id: user(1), code: "abc".into(), ttl_secs: None, at: at() })
            .then_expect_events(vec![invite("abc", DEFAULT_INVITE_TTL_SECS)]);
        for bad in [0, -5, DEFAULT_INVITE_TTL_SECS + 1] {
            ChatTest::with(())
                .given(vec![group_created()])
                .when(ChatCommand::CreateInvite {
                    actor_id: user(1),
                    code: "abc".into(),
                    ttl_secs: Some(bad),
                    at: at(),
                })
                .then_expect_error(ChatError::InvalidInviteTtl);
        }
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60)])
            .when(join(3, "abc", later(60)))
            .then_expect_error(ChatError::InvalidInvite);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60)])
            .when(join(3, "abc", later(59)))
            .then_expect_events(vec![joined(3, 1, later(59))]);
        // A code recorded before codes expired lasts the default from its creation.
        let legacy: ChatEvent = serde_json::from_value(serde_json::json!({"InviteCreated": {
            "code": "abc", "created_by": user(1), "at": at()}}))
        .expect("an InviteCreated without expires_at decodes");
        ChatTest::with(())
            .given(vec![group_created(), legacy.clone()])
            .when(join(3, "abc", later(DEFAULT_INVITE_TTL_SECS)))
            .then_expect_error(ChatError::InvalidInvite);
        ChatTest::with(())
            .given(vec![group_created(), legacy])
            .when(join(3, "abc", later(DEFAULT_INVITE_TTL_SECS - 1)))
            .then_expect_events(vec![joined(3, 1, later(DEFAULT_INVITE_TTL_SECS - 1))]);
    }

    #[test]
    fn a_new_invite_revokes_the_old_and_admins_revoke_them_all() {
        let revoked = ChatEvent::InvitesRevoked { codes: vec!["abc".into()], revoked_by: user(1), at: at() };
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60)])
            .when(ChatCommand::CreateInvite { actor_id: user(1), code: "new".into(), ttl_secs: Some(60), at: at() })
            .then_expect_events(vec![revoked.clone(), invite("new", 60)]);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60), revoked.clone(), invite("new", 60)])
            .when(join(3, "abc", at()))
            .then_expect_error(ChatError::InvalidInvite);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60)])
            .when(ChatCommand::RevokeInvites { actor_id: user(2), at: at() })
            .then_expect_error(ChatError::NotAdmin);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60)])
            .when(ChatCommand::RevokeInvites { actor_id: user(1), at: at() })
            .then_expect_events(vec![revoked.clone()]);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60), revoked.clone()])
            .when(join(3, "abc", at()))
            .then_expect_error(ChatError::InvalidInvite);
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60), revoked])
            .when(ChatCommand::RevokeInvites { actor_id: user(1), at: at() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_member_removed_by_an_admin_rejoins_only_when_an_admin_adds_them() {
        let kicked = ChatEvent::MemberRemoved { user_id: user(2), removed_by: user(1), at: at() };
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60), kicked.clone()])
            .when(join(2, "abc", at()))
            .then_expect_error(ChatError::InvalidInvite);
        let readded = ChatEvent::MembersAdded {
            added_by: user(1),
            members: vec![MemberEntry { user_id: user(2), role: Role::Member }],
            at: at(),
            visible_from_seq: Some(2),
        };
        let left_again = ChatEvent::MemberRemoved { user_id: user(2), removed_by: user(2), at: at() };
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60), kicked, sent(1, 1), readded, left_again])
            .when(join(2, "abc", at()))
            .then_expect_events(vec![ChatEvent::MemberJoined {
                user_id: user(2),
                invite_code: "abc".into(),
                at: at(),
                visible_from_seq: Some(2),
            }]);
        // Leaving on your own does not bar you.
        let left = ChatEvent::MemberRemoved { user_id: user(2), removed_by: user(2), at: at() };
        ChatTest::with(())
            .given(vec![group_created(), invite("abc", 60), sent(1, 1), sent(1, 2), left])
            .when(join(2, "abc", at()))
            .then_expect_events(vec![joined(2, 3, at())]);
    }

    #[test]
    fn a_late_member_sees_from_their_join_in_replies_reads_and_deletes() {
        let history = vec![group_created(), sent(1, 1), sent(1, 2), invite("abc", 60), joined(3, 3, at()), sent(1, 3)];
        let reply = |seq| {
            let mut command = send(3, "r");
            if let ChatCommand::SendMessage { reply_to, .. } = &mut command {
                *reply_to = Some(ReplyRef { message_id: Uuid::from_u128(900 + seq as u128), seq });
            }
            command
        };
        ChatTest::with(()).given(history.clone()).when(reply(2)).then_expect_error(ChatError::InvalidReplyTo);
        // A seq the chat does not have yet is no message at all.
        ChatTest::with(()).given(history.clone()).when(reply(4)).then_expect_error(ChatError::InvalidReplyTo);
        let mut expected = sent(3, 4);
        if let ChatEvent::MessageSent { reply_to, client_msg_id, .. } = &mut expected {
            *reply_to = Some(Uuid::from_u128(903));
            *client_msg_id = "r".into();
        }
        ChatTest::with(()).given(history.clone()).when(reply(3)).then_expect_events(vec![expected]);
        // Earlier messages are not unread for them, and marking them read changes nothing.
        ChatTest::with(())
            .given(history.clone())
            .when(ChatCommand::MarkRead { user_id: user(3), up_to_seq: 2, at: at() })
            .then_expect_events(vec![]);
        ChatTest::with(())
            .given(history.clone())
            .when(ChatCommand::MarkRead { user_id: user(3), up_to_seq: 3, at: at() })
            .then_expect_events(vec![ChatEvent::MarkedRead { user_id: user(3), seq: 3, at: at() }]);
        let early = MessageRef { message_id: Uuid::from_u128(500), seq: 2, sender_id: user(1) };
        ChatTest::with(())
            .given(history)
            .when(ChatCommand::DeleteMessage { actor_id: user(3), message: early, scope: DeleteScope::Me, at: at() })
            .then_expect_error(ChatError::NotFound);
    }

    #[test]
    fn members_added_later_start_at_the_next_seq() {
        ChatTest::with(())
            .given(vec![group_created(), sent(1, 1), sent(2, 2)])
            .when(ChatCommand::AddMembers { actor_id: user(1), user_ids: vec![user(3)], at: at() })
            .then_expect_events(vec![ChatEvent::MembersAdded {
                added_by: user(1),
                members: vec![MemberEntry { user_id: user(3), role: Role::Member }],
                at: at(),
                visible_from_seq: Some(3),
            }]);
    }
}
