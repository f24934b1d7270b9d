//! The `Call` aggregate: one voice or video call in a chat, from ringing to its end.
//!
//! The api decides who may call (chat membership, one live call per chat) and when ringing has
//! lasted too long; this aggregate holds the rules of the call itself: who is ringing, who is in,
//! who declined, and when the call is over. The SFU's reports (a participant's media connected or
//! went away) arrive as commands too, so a call whose last participant vanished ends by itself.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Audio,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Nobody but the caller has answered yet.
    Ringing,
    /// Someone answered.
    Active,
    /// Everyone hung up after the call was answered.
    Ended,
    /// Every callee declined.
    Rejected,
    /// Nobody answered before ringing timed out or the caller gave up.
    Missed,
}

impl CallStatus {
    pub fn is_over(self) -> bool {
        matches!(self, CallStatus::Ended | CallStatus::Rejected | CallStatus::Missed)
    }
}

/// Where one member stands in the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantState {
    Ringing,
    Joined,
    Rejected,
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The participant hung up (`POST /calls/{id}/end`).
    HungUp,
    /// The SFU lost them: socket closed, `leave`, or ICE timeout.
    Disconnected,
    /// They were removed from the call's chat (or left it): their right to the call ended.
    Removed,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallCommand {
    Start {
        call_id: Uuid,
        chat_id: Uuid,
        kind: CallKind,
        initiator_id: Uuid,
        /// The chat's other members: they ring.
        invitee_ids: Vec<Uuid>,
        /// A 1:1 call ends when either side hangs up; a group call when its last one leaves.
        direct: bool,
        /// The SFU node the call's media goes through (`None`: no node was registered).
        sfu_node: Option<String>,
        at: DateTime<Utc>,
    },
    /// The call's media moves to the SFU node `to`, if it is still on `from` (the node died or
    /// was never there); its participants join again there.
    MoveMedia {
        from: Option<String>,
        to: String,
        at: DateTime<Utc>,
    },
    /// Answer, or join a group call already under way (the api checked chat membership).
    Accept {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    Reject {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Hang up.
    Leave {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// `user_id` is no longer a member of the call's chat (removed by an admin, or left it).
    Remove {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The SFU reports the participant's media connected.
    RecordMediaConnected {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The SFU reports the participant gone.
    RecordMediaDisconnected {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Time is up for a call nothing happened in since `cutoff`: still ringing, it is missed;
    /// answered but with nobody's media connected (they all vanished before reaching the SFU),
    /// it ends.
    Expire {
        cutoff: DateTime<Utc>,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CallEvent {
    CallStarted {
        call_id: Uuid,
        chat_id: Uuid,
        kind: CallKind,
        initiator_id: Uuid,
        invitee_ids: Vec<Uuid>,
        direct: bool,
        started_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sfu_node: Option<String>,
    },
    /// The call's media is on another SFU node now: its participants must join there.
    CallMediaMoved {
        from: Option<String>,
        to: String,
        at: DateTime<Utc>,
    },
    CallAccepted {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    CallRejected {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    ParticipantConnected {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    ParticipantLeft {
        user_id: Uuid,
        reason: LeaveReason,
        at: DateTime<Utc>,
    },
    /// The call is over; `chat_id` frees the chat for its next call.
    CallEnded {
        chat_id: Uuid,
        status: CallStatus,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for CallEvent {
    fn event_type(&self) -> String {
        match self {
            CallEvent::CallStarted { .. } => "CallStarted",
            CallEvent::CallMediaMoved { .. } => "CallMediaMoved",
            CallEvent::CallAccepted { .. } => "CallAccepted",
            CallEvent::CallRejected { .. } => "CallRejected",
            CallEvent::ParticipantConnected { .. } => "ParticipantConnected",
            CallEvent::ParticipantLeft { .. } => "ParticipantLeft",
            CallEvent::CallEnded { .. } => "CallEnded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("call already exists")]
    AlreadyExists,
    /// Also what someone outside the call's chat gets.
    #[error("call not found")]
    NotFound,
    #[error("there is nobody else in this chat to call")]
    NobodyToCall,
    #[error("the call is over")]
    CallOver,
    #[error("you are not being called")]
    NotRinging,
    #[error("you are not in this call")]
    NotInCall,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: Option<Uuid>,
    pub chat_id: Option<Uuid>,
    pub kind: Option<CallKind>,
    pub initiator_id: Option<Uuid>,
    pub direct: bool,
    pub status: Option<CallStatus>,
    pub started_at: Option<DateTime<Utc>>,
    pub participants: BTreeMap<Uuid, ParticipantState>,
    /// Participants whose media the SFU has connected.
    #[serde(default)]
    pub connected: BTreeSet<Uuid>,
    /// When the call last changed.
    #[serde(default)]
    pub last_activity: Option<DateTime<Utc>>,
    /// The SFU node the call is pinned to for its life (until that node dies).
    #[serde(default)]
    pub sfu_node: Option<String>,
}

impl Call {
    fn live_status(&self) -> Result<CallStatus, CallError> {
        match self.status {
            None => Err(CallError::NotFound),
            Some(status) if status.is_over() => Err(CallError::CallOver),
            Some(status) => Ok(status),
        }
    }

    fn state_of(&self, user_id: Uuid) -> Option<ParticipantState> {
        self.participants.get(&user_id).copied()
    }

    fn joined_besides(&self, user_id: Uuid) -> usize {
        self.participants.iter().filter(|(id, s)| **id != user_id && **s == ParticipantState::Joined).count()
    }

    /// `user_id` leaves; the call ends when that was the last one in it (or either side of a 1:1).
    fn leave(&self, user_id: Uuid, reason: LeaveReason, at: DateTime<Utc>) -> Vec<CallEvent> {
        let mut events = vec![CallEvent::ParticipantLeft { user_id, reason, at }];
        if self.direct || self.joined_besides(user_id) == 0 {
            // A caller who gives up before anyone answered leaves a missed call behind.
            let status = match self.status {
                Some(CallStatus::Ringing) => CallStatus::Missed,
                _ => CallStatus::Ended,
            };
            events.push(self.ended(status, at));
        }
        events
    }

    fn ended(&self, status: CallStatus, at: DateTime<Utc>) -> CallEvent {
        CallEvent::CallEnded { chat_id: self.chat_id.unwrap_or_default(), status, at }
    }

    fn decide(&self, command: CallCommand) -> Result<Vec<CallEvent>, CallError> {
        Ok(match command {
            CallCommand::Start { call_id, chat_id, kind, initiator_id, invitee_ids, direct, sfu_node, at } => {
                if self.status.is_some() {
                    return Err(CallError::AlreadyExists);
                }
                let mut invitee_ids: Vec<Uuid> = invitee_ids.into_iter().filter(|id| *id != initiator_id).collect();
                invitee_ids.sort();
                invitee_ids.dedup();
                if invitee_ids.is_empty() {
                    return Err(CallError::NobodyToCall);
                }
                vec![CallEvent::CallStarted {
                    call_id,
                    chat_id,
                    kind,
                    initiator_id,
                    invitee_ids,
                    direct,
                    started_at: at,
                    sfu_node,
                }]
            }
            CallCommand::MoveMedia { from, to, at } => {
                self.live_status()?;
                // Another api replica moved it first (to wherever): nothing more to do.
                if self.sfu_node != from || from.as_deref() == Some(to.as_str()) {
                    return Ok(vec![]);
                }
                vec![CallEvent::CallMediaMoved { from, to, at }]
            }
            CallCommand::Accept { user_id, at } => {
                self.live_status()?;
                match self.state_of(user_id) {
                    Some(ParticipantState::Joined) => vec![],
                    Some(ParticipantState::Ringing) => vec![CallEvent::CallAccepted { user_id, at }],
                    // Back into a group call after declining or leaving it.
                    Some(ParticipantState::Rejected | ParticipantState::Left) | None if !self.direct => {
                        vec![CallEvent::CallAccepted { user_id, at }]
                    }
                    _ => return Err(CallError::NotRinging),
                }
            }
            CallCommand::Reject { user_id, at } => {
                self.live_status()?;
                match self.state_of(user_id) {
                    Some(ParticipantState::Rejected) => vec![],
                    Some(ParticipantState::Ringing) => {
                        let mut events = vec![CallEvent::CallRejected { user_id, at }];
                        let still_ringing =
                            self.participants.iter().any(|(id, s)| *id != user_id && *s == ParticipantState::Ringing);
                        let answered = self.status == Some(CallStatus::Active);
                        if self.direct || (!still_ringing && !answered) {
                            events.push(self.ended(CallStatus::Rejected, at));
                        }
                        events
                    }
                    _ => return Err(CallError::NotRinging),
                }
            }
            CallCommand::Leave { user_id, at } => {
                self.live_status()?;
                if self.state_of(user_id) != Some(ParticipantState::Joined) {
                    return Err(CallError::NotInCall);
                }
                self.leave(user_id, LeaveReason::HungUp, at)
            }
            CallCommand::Remove { user_id, at } => {
                // The api runs this after the chat removal committed, whatever the call's state:
                // nothing to do is not an error.
                if self.live_status().is_err() {
                    return Ok(vec![]);
                }
                match self.state_of(user_id) {
                    Some(ParticipantState::Joined) => self.leave(user_id, LeaveReason::Removed, at),
                    Some(ParticipantState::Ringing) => {
                        let mut events = vec![CallEvent::ParticipantLeft { user_id, reason: LeaveReason::Removed, at }];
                        let still_ringing =
                            self.participants.iter().any(|(id, s)| *id != user_id && *s == ParticipantState::Ringing);
                        if self.direct || (!still_ringing && self.status == Some(CallStatus::Ringing)) {
                            events.push(self.ended(CallStatus::Missed, at));
                        }
                        events
                    }
                    // Someone who left (or whose media dropped) may still hold an unused join
                    // token; the event tells the SFU to refuse it. The call goes on.
                    Some(ParticipantState::Left) => {
                        vec![CallEvent::ParticipantLeft { user_id, reason: LeaveReason::Removed, at }]
                    }
                    Some(ParticipantState::Rejected) | None => vec![],
                }
            }
            CallCommand::RecordMediaConnected { user_id, at } => {
                // Reports can arrive late or twice: only a participant still in a live call counts.
                match (self.live_status(), self.state_of(user_id)) {
                    (Ok(_), Some(ParticipantState::Joined)) => vec![CallEvent::ParticipantConnected { user_id, at }],
                    _ => vec![],
                }
            }
            CallCommand::RecordMediaDisconnected { user_id, at } => {
                match (self.live_status(), self.state_of(user_id)) {
                    (Ok(_), Some(ParticipantState::Joined)) => self.leave(user_id, LeaveReason::Disconnected, at),
                    _ => vec![],
                }
            }
            CallCommand::Expire { cutoff, at } => {
                let quiet_since_cutoff = self.last_activity.is_some_and(|last| last <= cutoff);
                match (self.status, self.started_at) {
                    (Some(CallStatus::Ringing), Some(started)) if started <= cutoff => {
                        vec![self.ended(CallStatus::Missed, at)]
                    }
                    (Some(CallStatus::Active), _) if self.connected.is_empty() && quiet_since_cutoff => {
                        vec![self.ended(CallStatus::Ended, at)]
                    }
                    _ => vec![],
                }
            }
        })
    }
}

impl Aggregate for Call {
    const TYPE: &'static str = "Call";
    type Command = CallCommand;
    type Event = CallEvent;
    type Error = CallError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.last_activity = Some(match &event {
            CallEvent::CallStarted { started_at, .. } => *started_at,
            CallEvent::CallAccepted { at, .. }
            | CallEvent::CallMediaMoved { at, .. }
            | CallEvent::CallRejected { at, .. }
            | CallEvent::ParticipantConnected { at, .. }
            | CallEvent::ParticipantLeft { at, .. }
            | CallEvent::CallEnded { at, .. } => *at,
        });
        match event {
            CallEvent::CallStarted {
                call_id,
                chat_id,
                kind,
                initiator_id,
                invitee_ids,
                direct,
                started_at,
                sfu_node,
            } => {
                self.id = Some(call_id);
                self.sfu_node = sfu_node;
                self.chat_id = Some(chat_id);
                self.kind = Some(kind);
                self.initiator_id = Some(initiator_id);
                self.direct = direct;
                self.status = Some(CallStatus::Ringing);
                self.started_at = Some(started_at);
                self.participants = invitee_ids.into_iter().map(|id| (id, ParticipantState::Ringing)).collect();
                self.participants.insert(initiator_id, ParticipantState::Joined);
            }
            CallEvent::CallMediaMoved { to, .. } => {
                self.sfu_node = Some(to);
                // Nobody's media is anywhere until they join the new node: a call nobody joins
                // there again expires like one whose participants all vanished.
                self.connected.clear();
            }
            CallEvent::CallAccepted { user_id, .. } => {
                self.participants.insert(user_id, ParticipantState::Joined);
                self.status = Some(CallStatus::Active);
            }
            CallEvent::CallRejected { user_id, .. } => {
                self.participants.insert(user_id, ParticipantState::Rejected);
            }
            CallEvent::ParticipantConnected { user_id, .. } => {
                self.connected.insert(user_id);
            }
            CallEvent::ParticipantLeft { user_id, .. } => {
                self.participants.insert(user_id, ParticipantState::Left);
                self.connected.remove(&user_id);
            }
            CallEvent::CallEnded { status, .. } => {
                self.status = Some(status);
                self.connected.clear();
                // Whoever was still ringing stops.
                for state in self.participants.values_mut() {
                    if *state == ParticipantState::Ringing || *state == ParticipantState::Joined {
                        *state = ParticipantState::Left;
                    }
                }
            }
        }
    }
}

/// What the SFU tells the api about a participant's media, over JetStream (see
/// `parley_eventbus::stream::StreamSettings::sfu_reports_subject`). The api turns it into
/// `RecordMediaConnected` / `RecordMediaDisconnected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SfuReport {
    pub call_id: Uuid,
    pub user_id: Uuid,
    /// `true`: media connected; `false`: the participant left (`leave`, closed socket, ICE timeout).
    pub connected: bool,
    pub at: DateTime<Utc>,
}

impl SfuReport {
    pub fn command(&self) -> CallCommand {
        let (user_id, at) = (self.user_id, self.at);
        if self.connected {
            CallCommand::RecordMediaConnected { user_id, at }
        } else {
            CallCommand::RecordMediaDisconnected { user_id, at }
        }
    }
}

/// What each SFU node writes about itself every second (a NATS KV entry keyed by its node id):
/// where clients reach it and how loaded it is. The api places calls by it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SfuNode {
    pub node_id: String,
    /// The node's signaling WebSocket (what `sfu.url` names).
    pub url: String,
    pub rooms: u64,
    pub participants: u64,
    pub packets_per_second: u64,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type CallTest = TestFramework<Call>;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }
    fn later(seconds: i64) -> DateTime<Utc> {
        at() + chrono::Duration::seconds(seconds)
    }
    fn user(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }
    fn chat() -> Uuid {
        Uuid::from_u128(100)
    }
    fn started(direct: bool, invitees: &[u128]) -> CallEvent {
        CallEvent::CallStarted {
            call_id: Uuid::from_u128(200),
            chat_id: chat(),
            kind: CallKind::Video,
            initiator_id: user(1),
            invitee_ids: invitees.iter().copied().map(user).collect(),
            direct,
            started_at: at(),
            sfu_node: Some("node-a".into()),
        }
    }
    fn accepted(n: u128) -> CallEvent {
        CallEvent::CallAccepted { user_id: user(n), at: at() }
    }
    fn ended(status: CallStatus) -> CallEvent {
        CallEvent::CallEnded { chat_id: chat(), status, at: at() }
    }

    #[test]
    fn a_call_rings_everyone_but_the_caller() {
        CallTest::with(())
            .given_no_previous_events()
            .when(CallCommand::Start {
                call_id: Uuid::from_u128(200),
                chat_id: chat(),
                kind: CallKind::Video,
                initiator_id: user(1),
                invitee_ids: vec![user(3), user(1), user(2), user(3)],
                direct: false,
                sfu_node: Some("node-a".into()),
                at: at(),
            })
            .then_expect_events(vec![started(false, &[2, 3])]);
        CallTest::with(())
            .given_no_previous_events()
            .when(CallCommand::Start {
                call_id: Uuid::from_u128(200),
                chat_id: chat(),
                kind: CallKind::Audio,
                initiator_id: user(1),
                invitee_ids: vec![user(1)],
                direct: false,
                sfu_node: Some("node-a".into()),
                at: at(),
            })
            .then_expect_error(CallError::NobodyToCall);
    }

    #[test]
    fn ring_accept_hang_up_ends_a_direct_call() {
        CallTest::with(())
            .given(vec![started(true, &[2])])
            .when(CallCommand::Accept { user_id: user(2), at: at() })
            .then_expect_events(vec![accepted(2)]);
        CallTest::with(())
            .given(vec![started(true, &[2]), accepted(2)])
            .when(CallCommand::Leave { user_id: user(2), at: at() })
            .then_expect_events(vec![
                CallEvent::ParticipantLeft { user_id: user(2), reason: LeaveReason::HungUp, at: at() },
                ended(CallStatus::Ended),
            ]);
    }

    #[test]
    fn accepting_twice_changes_nothing_and_an_ended_call_cannot_be_joined() {
        CallTest::with(())
            .given(vec![started(true, &[2]), accepted(2)])
            .when(CallCommand::Accept { user_id: user(2), at: at() })
            .then_expect_events(vec![]);
        CallTest::with(())
            .given(vec![started(true, &[2]), accepted(2), ended(CallStatus::Ended)])
            .when(CallCommand::Accept { user_id: user(2), at: at() })
            .then_expect_error(CallError::CallOver);
        CallTest::with(())
            .given_no_previous_events()
            .when(CallCommand::Accept { user_id: user(2), at: at() })
            .then_expect_error(CallError::NotFound);
    }

    #[test]
    fn rejecting_a_direct_call_ends_it_but_a_group_call_rings_on() {
        CallTest::with(())
            .given(vec![started(true, &[2])])
            .when(CallCommand::Reject { user_id: user(2), at: at() })
            .then_expect_events(vec![
                CallEvent::CallRejected { user_id: user(2), at: at() },
                ended(CallStatus::Rejected),
            ]);
        CallTest::with(())
            .given(vec![started(false, &[2, 3])])
            .when(CallCommand::Reject { user_id: user(2), at: at() })
            .then_expect_events(vec![CallEvent::CallRejected { user_id: user(2), at: at() }]);
        CallTest::with(())
            .given(vec![started(false, &[2, 3]), CallEvent::CallRejected { user_id: user(2), at: at() }])
            .when(CallCommand::Reject { user_id: user(3), at: at() })
            .then_expect_events(vec![
                CallEvent::CallRejected { user_id: user(3), at: at() },
                ended(CallStatus::Rejected),
            ]);
        // Once someone answered, a decline only concerns the one declining.
        CallTest::with(())
            .given(vec![started(false, &[2, 3]), accepted(2)])
            .when(CallCommand::Reject { user_id: user(3), at: at() })
            .then_expect_events(vec![CallEvent::CallRejected { user_id: user(3), at: at() }]);
        CallTest::with(())
            .given(vec![started(true, &[2]), accepted(2)])
            .when(CallCommand::Reject { user_id: user(2), at: at() })
            .then_expect_error(CallError::NotRinging);
    }

    #[test]
    fn a_group_call_ends_when_its_last_participant_leaves() {
        let given = vec![started(false, &[2, 3]), accepted(2)];
        CallTest::with(())
            .given(given.clone())
            .when(CallCommand::Leave { user_id: user(1), at: at() })
            .then_expect_events(vec![CallEvent::ParticipantLeft {
                user_id: user(1),
                reason: LeaveReason::HungUp,
                at: at(),
            }]);
        let mut one_left = given;
        one_left.push(CallEvent::ParticipantLeft { user_id: user(1), reason: LeaveReason::HungUp, at: at() });
        CallTest::with(())
            .given(one_left)
            .when(CallCommand::RecordMediaDisconnected { user_id: user(2), at: at() })
            .then_expect_events(vec![
                CallEvent::ParticipantLeft { user_id: user(2), reason: LeaveReason::Disconnected, at: at() },
                ended(CallStatus::Ended),
            ]);
    }

    #[test]
    fn late_joiners_may_enter_a_group_call_but_not_a_direct_one() {
        CallTest::with(())
            .given(vec![started(false, &[2]), accepted(2)])
            .when(CallCommand::Accept { user_id: user(9), at: at() })
            .then_expect_events(vec![accepted(9)]);
        CallTest::with(())
            .given(vec![started(true, &[2])])
            .when(CallCommand::Accept { user_id: user(9), at: at() })
            .then_expect_error(CallError::NotRinging);
        CallTest::with(())
            .given(vec![started(false, &[2])])
            .when(CallCommand::Leave { user_id: user(2), at: at() })
            .then_expect_error(CallError::NotInCall);
    }

    #[test]
    fn ringing_expires_into_a_missed_call_and_a_caller_who_gives_up_leaves_one_too() {
        CallTest::with(())
            .given(vec![started(true, &[2])])
            .when(CallCommand::Expire { cutoff: later(-1), at: later(45) })
            .then_expect_events(vec![]);
        CallTest::with(())
            .given(vec![started(true, &[2])])
            .when(CallCommand::Expire { cutoff: at(), at: at() })
            .then_expect_events(vec![ended(CallStatus::Missed)]);
        // Answered, and in the media: time does not end it.
        let connected = CallEvent::ParticipantConnected { user_id: user(2), at: at() };
        CallTest::with(())
            .given(vec![started(true, &[2]), accepted(2), connected])
            .when(CallCommand::Expire { cutoff: later(60), at: at() })
            .then_expect_events(vec![]);
        CallTest::with(())
            .given(vec![started(true, &[2])])
            .when(CallCommand::Leave { user_id: user(1), at: at() })
            .then_expect_events(vec![
                CallEvent::ParticipantLeft { user_id: user(1), reason: LeaveReason::HungUp, at: at() },
                ended(CallStatus::Missed),
            ]);
    }

    #[test]
    fn an_answered_call_nobody_reached_the_sfu_for_ends_when_time_is_up() {
        let answered = vec![started(true, &[2]), accepted(2)];
        CallTest::with(())
            .given(answered.clone())
            .when(CallCommand::Expire { cutoff: later(-1), at: later(60) })
            .then_expect_events(vec![]);
        CallTest::with(())
            .given(answered.clone())
            .when(CallCommand::Expire { cutoff: later(1), at: at() })
            .then_expect_events(vec![ended(CallStatus::Ended)]);
        let mut in_media = answered;
        in_media.push(CallEvent::ParticipantConnected { user_id: user(2), at: at() });
        CallTest::with(())
            .given(in_media)
            .when(CallCommand::Expire { cutoff: later(60), at: later(60) })
            .then_expect_events(vec![]);
    }

    fn removed(n: u128) -> CallEvent {
        CallEvent::ParticipantLeft { user_id: user(n), reason: LeaveReason::Removed, at: at() }
    }

    #[test]
    fn a_member_removed_from_the_chat_leaves_a_group_call_that_goes_on_for_the_others() {
        CallTest::with(())
            .given(vec![started(false, &[2, 3]), accepted(2)])
            .when(CallCommand::Remove { user_id: user(2), at: at() })
            .then_expect_events(vec![removed(2)]);
        // Still ringing for them: they stop ringing, the others still ring.
        CallTest::with(())
            .given(vec![started(false, &[2, 3])])
            .when(CallCommand::Remove { user_id: user(3), at: at() })
            .then_expect_events(vec![removed(3)]);
    }

    #[test]
    fn removing_the_last_participant_or_a_side_of_a_direct_call_ends_it() {
        let one_left = CallEvent::ParticipantLeft { user_id: user(1), reason: LeaveReason::HungUp, at: at() };
        CallTest::with(())
            .given(vec![started(false, &[2, 3]), accepted(2), one_left])
            .when(CallCommand::Remove { user_id: user(2), at: at() })
            .then_expect_events(vec![removed(2), ended(CallStatus::Ended)]);
        CallTest::with(())
            .given(vec![started(true, &[2]), accepted(2)])
            .when(CallCommand::Remove { user_id: user(1), at: at() })
            .then_expect_events(vec![removed(1), ended(CallStatus::Ended)]);
        // The last one it rang for is gone before anyone answered: nobody is left to answer.
        CallTest::with(())
            .given(vec![started(false, &[2, 3]), CallEvent::CallRejected { user_id: user(3), at: at() }])
            .when(CallCommand::Remove { user_id: user(2), at: at() })
            .then_expect_events(vec![removed(2), ended(CallStatus::Missed)]);
    }

    #[test]
    fn removing_someone_who_already_left_is_recorded_for_the_sfu_and_the_call_goes_on() {
        let left = CallEvent::ParticipantLeft { user_id: user(2), reason: LeaveReason::Disconnected, at: at() };
        CallTest::with(())
            .given(vec![started(false, &[2, 3]), accepted(2), accepted(3), left])
            .when(CallCommand::Remove { user_id: user(2), at: at() })
            .then_expect_events(vec![removed(2)]);
    }

    #[test]
    fn removing_someone_not_in_a_live_call_changes_nothing() {
        CallTest::with(())
            .given(vec![started(false, &[2, 3]), accepted(2)])
            .when(CallCommand::Remove { user_id: user(9), at: at() })
            .then_expect_events(vec![]);
        CallTest::with(())
            .given(vec![started(false, &[2, 3]), CallEvent::CallRejected { user_id: user(3), at: at() }])
            .when(CallCommand::Remove { user_id: user(3), at: at() })
            .then_expect_events(vec![]);
        CallTest::with(())
            .given(vec![started(true, &[2]), accepted(2), ended(CallStatus::Ended)])
            .when(CallCommand::Remove { user_id: user(2), at: at() })
            .then_expect_events(vec![]);
        CallTest::with(())
            .given_no_previous_events()
            .when(CallCommand::Remove { user_id: user(2), at: at() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn sfu_reports_about_people_not_in_the_call_change_nothing() {
        CallTest::with(())
            .given(vec![started(true, &[2])])
            .when(CallCommand::RecordMediaConnected { user_id: user(2), at: at() })
            .then_expect_events(vec![]);
        CallTest::with(())
            .given(vec![started(true, &[2])])
            .when(CallCommand::RecordMediaConnected { user_id: user(1), at: at() })
            .then_expect_events(vec![CallEvent::ParticipantConnected { user_id: user(1), at: at() }]);
        CallTest::with(())
            .given(vec![started(true, &[2]), accepted(2), ended(CallStatus::Ended)])
            .when(CallCommand::RecordMediaDisconnected { user_id: user(2), at: at() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn media_moves_once_off_a_dead_node_and_its_participants_must_connect_again() {
        let moved = CallEvent::CallMediaMoved { from: Some("node-a".into()), to: "node-b".into(), at: later(5) };
        let connected = CallEvent::ParticipantConnected { user_id: user(1), at: at() };
        CallTest::with(())
            .given(vec![started(false, &[2]), accepted(2), connected.clone()])
            .when(CallCommand::MoveMedia { from: Some("node-a".into()), to: "node-b".into(), at: later(5) })
            .then_expect_events(vec![moved.clone()]);
        // A second replica that saw the same death finds it moved already.
        CallTest::with(())
            .given(vec![started(false, &[2]), accepted(2), moved.clone()])
            .when(CallCommand::MoveMedia { from: Some("node-a".into()), to: "node-c".into(), at: later(6) })
            .then_expect_events(vec![]);
        // Nobody's media is on the new node until they join it, so a call nobody rejoins expires.
        let mut call = Call::default();
        for event in [started(false, &[2]), accepted(2), connected, moved] {
            call.apply(event);
        }
        assert_eq!(call.sfu_node.as_deref(), Some("node-b"));
        assert!(call.connected.is_empty());
        // Over is over.
        CallTest::with(())
            .given(vec![started(false, &[2]), ended(CallStatus::Missed)])
            .when(CallCommand::MoveMedia { from: Some("node-a".into()), to: "node-b".into(), at: later(5) })
            .then_expect_error(CallError::CallOver);
    }
}
