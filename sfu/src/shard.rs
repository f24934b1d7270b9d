//! A shard: one task that owns some rooms and every participant in them (their `Rtc`s), so the
//! packet path takes no lock. Rooms go to shards by call id; the UDP router hands each datagram
//! to the shard that owns its participant.
//!
//! Per participant the SFU keeps what it receives (`tracks_in`, from the client's own offer) and
//! what it sends (`tracks_out`, one send-only m-line per track of every other participant).
//! After the client's first offer only the SFU offers (one at a time), so there is no glare; an
//! answer that arrives when no offer is pending is ignored.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::token::TokenError;
use chrono::Utc;
use parley_domain::call::SfuReport;
use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::metrics::SfuMetrics;
use crate::rights::Revocation;
use crate::router::RouteUpdate;
use crate::stun;

pub type ParticipantId = u64;

/// How often a participant's upstream is asked for a keyframe at most (gaps, new subscribers).
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);
/// Liveness is checked this often.
const LIVENESS_TICK: Duration = Duration::from_millis(250);
/// A timeout str0m reports far in the future is capped, so the timer set stays meaningful.
const MAX_WAIT: Duration = Duration::from_secs(1);

pub enum ShardInput {
    Join(JoinRequest),
    Answer {
        participant: ParticipantId,
        sdp: String,
    },
    Leave {
        participant: ParticipantId,
        /// The client said `leave` (else its socket went away: it may be back).
        said: bool,
    },
    /// The subscriber wants simulcast layer `rid` on its outgoing `mid`.
    Layer {
        participant: ParticipantId,
        mid: String,
        rid: String,
    },
    Packet {
        source: SocketAddr,
        contents: Vec<u8>,
        at: Instant,
    },
    /// A right ended: drop the peers it covers.
    Revoke(Revocation),
    /// This node lost the directory and the api moves its calls: drop every participant.
    Evacuate,
    /// Test-only fault: no datagram to or from `user_id`'s peers until `until`.
    Blackhole {
        user_id: Uuid,
        until: Instant,
    },
}

/// When the api hears that a participant the SFU removed has left the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaveReport {
    /// They said so, or their right ended.
    Now,
    /// The SFU lost them: only if they have not joined again within the rejoin grace.
    AfterGrace,
    /// They joined again from another connection.
    Never,
}

pub struct JoinRequest {
    pub participant: ParticipantId,
    pub call_id: Uuid,
    pub user_id: Uuid,
    /// From the join token: its session, when it was issued, and whether it allows video.
    pub session_id: Uuid,
    pub issued_ms: i64,
    pub video: bool,
    pub offer_sdp: String,
    /// Frames for the participant's signaling socket.
    pub signal: mpsc::UnboundedSender<Signal>,
    pub answered: oneshot::Sender<Result<String, JoinError>>,
}

/// What the shard tells a participant's signaling socket.
#[derive(Debug)]
pub enum Signal {
    Offer(String),
    Participants(Value),
    /// The SFU removed the participant (ICE timeout, joined again elsewhere, ...).
    Removed(String),
    /// This node gave up its calls (it lost the directory): join again through the api.
    Unavailable(String),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum JoinError {
    #[error("malformed SDP offer: {0}")]
    Sdp(String),
    #[error("the SFU cannot take this participant: {0}")]
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    /// Waiting for the next offer to add its m-line.
    ToOpen,
    Negotiating(Mid),
    Open(Mid),
    /// Its source left: to be stopped in the next offer.
    ToStop(Mid),
    Stopping(Mid),
}

/// One of another participant's tracks, as sent to this participant.
struct TrackOut {
    source: ParticipantId,
    source_mid: Mid,
    kind: MediaKind,
    state: OutState,
    /// The simulcast layer this subscriber asked for (else the publisher's first).
    wanted: Option<Rid>,
    /// The layer being forwarded; a switch happens on the new layer's keyframe.
    current: Option<Rid>,
}

impl TrackOut {
    fn new(source: ParticipantId, source_mid: Mid, kind: MediaKind) -> Self {
        Self { source, source_mid, kind, state: OutState::ToOpen, wanted: None, current: None }
    }

    /// The mid this subscriber gets `source`'s `source_mid` on, once that m-line is open.
    fn open_mid_for(&self, source: ParticipantId, source_mid: Mid) -> Option<Mid> {
        match self.state {
            OutState::Open(mid) if self.source == source && self.source_mid == source_mid => Some(mid),
            _ => None,
        }
    }

    /// What a frame of layer `rid` (of a publisher declaring `layers`, of which `active` are
    /// sent) means for this subscriber: whether it is forwarded, and the layer whose keyframe
    /// the subscriber waits for, if any. Without simulcast every frame is forwarded; with it,
    /// only frames of the layer being forwarded, which switches to the target layer (see
    /// [`pick_layer`]) on that layer's keyframe.
    fn take_frame(&mut self, layers: &[Rid], active: &[Rid], rid: Option<Rid>, keyframe: bool) -> (bool, Option<Rid>) {
        if layers.is_empty() {
            return (true, None);
        }
        let target = pick_layer(layers, self.wanted, |layer| active.contains(&layer));
        let mut awaited = None;
        if self.current != target {
            if rid == target && keyframe {
                self.current = target;
            } else {
                awaited = target;
            }
        }
        (rid == self.current, awaited)
    }
}

/// A participant a frame goes to: its `tracks_out[track]`, open on its m-line `mid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Subscriber {
    participant: ParticipantId,
    track: usize,
    mid: Mid,
}

/// Where in `tracks` `source`'s `source_mid` is open, and on which of the subscriber's mids.
fn open_track(tracks: &[TrackOut], source: ParticipantId, source_mid: Mid) -> Option<(usize, Mid)> {
    tracks.iter().enumerate().find_map(|(index, t)| t.open_mid_for(source, source_mid).map(|mid| (index, mid)))
}

/// A simulcast layer counts as sent while its packets arrived this recently.
const LAYER_ACTIVE: Duration = Duration::from_millis(1000);

/// The layer to forward among the publisher's `layers` (declared best first): the one wanted
/// (else the best), or, when the publisher is not sending it (browsers drop layers when short
/// of CPU or bandwidth), the nearest it sends, lower ones first. With nothing sent yet, the
/// wanted one.
fn pick_layer(layers: &[Rid], wanted: Option<Rid>, active: impl Fn(Rid) -> bool) -> Option<Rid> {
    let start = wanted.and_then(|rid| layers.iter().position(|l| *l == rid)).unwrap_or(0);
    let preferred = layers.get(start).copied();
    let lower = layers.iter().skip(start).copied().find(|rid| active(*rid));
    let higher = layers.iter().take(start).rev().copied().find(|rid| active(*rid));
    lower.or(higher).or(preferred)
}

struct TrackIn {
    mid: Mid,
    kind: MediaKind,
    /// Simulcast layers as the publisher declared them (best first); empty without simulcast.
    layers: Vec<Rid>,
    last_keyframe_request: HashMap<Option<Rid>, Instant>,
    /// When each layer last carried a frame.
    last_seen: HashMap<Rid, Instant>,
}

impl TrackIn {
    /// Whether the publisher is sending layer `rid` (a frame of it within [`LAYER_ACTIVE`]).
    fn is_sent(&self, rid: Rid, now: Instant) -> bool {
        self.last_seen.get(&rid).is_some_and(|at| now.duration_since(*at) < LAYER_ACTIVE)
    }

    fn layer_for(&self, wanted: Option<Rid>, now: Instant) -> Option<Rid> {
        pick_layer(&self.layers, wanted, |rid| self.is_sent(rid, now))
    }
}

struct Participant {
    call_id: Uuid,
    user_id: Uuid,
    session_id: Uuid,
    /// When its join token was issued (ms): a right that ended later drops the peer.
    issued_ms: i64,
    /// An audio participant's video is neither forwarded nor does it receive any.
    video: bool,
    rtc: Rtc,
    ufrag: String,
    addresses: BTreeSet<SocketAddr>,
    signal: mpsc::UnboundedSender<Signal>,
    pending: Option<SdpPendingOffer>,
    tracks_in: Vec<TrackIn>,
    tracks_out: Vec<TrackOut>,
    /// When str0m next wants `Input::Timeout`.
    wake_at: Instant,
    last_heard: Instant,
    connected: bool,
    /// Cumulative NACKs str0m reported per outgoing mid (its stats are totals).
    nacks_seen: HashMap<Mid, u64>,
}

pub struct Shard {
    drop_every_nth_rtp: u64,
    rtp_sent: u64,
    socket: Arc<UdpSocket>,
    advertised: SocketAddr,
    peer_timeout: Duration,
    rejoin_grace: Duration,
    index: usize,
    routes: mpsc::UnboundedSender<RouteUpdate>,
    reports: mpsc::UnboundedSender<SfuReport>,
    metrics: Arc<SfuMetrics>,
    rooms: HashMap<Uuid, Vec<ParticipantId>>,
    participants: HashMap<ParticipantId, Participant>,
    by_addr: HashMap<SocketAddr, ParticipantId>,
    by_ufrag: HashMap<String, ParticipantId>,
    timers: BTreeSet<(Instant, ParticipantId)>,
    /// Leaves not reported yet, by (call, user): when to report them, and when they happened.
    pending_leaves: HashMap<(Uuid, Uuid), (Instant, chrono::DateTime<Utc>)>,
    /// Test-only: users whose datagrams are dropped, until when.
    blackholes: HashMap<Uuid, Instant>,
}

/// Work that one participant's events cause for others, handled in order.
enum Work {
    Event(ParticipantId, Event),
}

pub struct ShardSettings {
    pub drop_every_nth_rtp: u64,
    pub socket: Arc<UdpSocket>,
    pub advertised: SocketAddr,
    pub peer_timeout: Duration,
    pub rejoin_grace: Duration,
    pub index: usize,
    pub routes: mpsc::UnboundedSender<RouteUpdate>,
    pub reports: mpsc::UnboundedSender<SfuReport>,
    pub metrics: Arc<SfuMetrics>,
}

impl Shard {
    pub fn new(settings: ShardSettings) -> Self {
        let ShardSettings {
            drop_every_nth_rtp,
            socket,
            advertised,
            peer_timeout,
            rejoin_grace,
            index,
            routes,
            reports,
            metrics,
        } = settings;
        Self {
            drop_every_nth_rtp,
            rtp_sent: 0,
            socket,
            advertised,
            peer_timeout,
            rejoin_grace,
            index,
            routes,
            reports,
            metrics,
            rooms: HashMap::new(),
            participants: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            timers: BTreeSet::new(),
            pending_leaves: HashMap::new(),
            blackholes: HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self, mut inputs: mpsc::Receiver<ShardInput>) {
        let mut liveness = tokio::time::interval(LIVENESS_TICK);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_timer = self.timers.first().map(|(at, _)| *at);
            let sleep = async {
                match next_timer {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let step: Box<dyn FnOnce(&mut Self)> = tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => Box::new(move |shard: &mut Self| shard.handle(input)),
                    None => return,
                },
                _ = sleep => Box::new(|shard: &mut Self| shard.fire_timers(Instant::now())),
                _ = liveness.tick() => Box::new(|shard: &mut Self| shard.check_liveness(Instant::now())),
            };
            // str0m promises not to panic on network input; should anything here panic anyway,
            // this shard's other rooms keep going rather than dying with it.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&mut self))).is_err() {
                tracing::error!(shard = self.index, "a shard step panicked; carrying on");
            }
        }
    }

    /// One input, as `run` applies it (public for the fuzz targets, which drive a shard without
    /// its task).
    pub fn handle(&mut self, input: ShardInput) {
        match input {
            ShardInput::Join(request) => self.join(request),
            ShardInput::Answer { participant, sdp } => self.answer(participant, &sdp),
            ShardInput::Leave { participant, said: true } => self.remove(participant, None),
            ShardInput::Leave { participant, said: false } => self.lose(participant, None),
            ShardInput::Layer { participant, mid, rid } => self.choose_layer(participant, &mid, &rid),
            ShardInput::Packet { source, contents, at } => self.packet(source, &contents, at),
            ShardInput::Revoke(revocation) => self.revoke(&revocation),
            ShardInput::Evacuate => self.evacuate(),
            ShardInput::Blackhole { user_id, until } => {
                self.blackholes.insert(user_id, until);
            }
        }
    }

    fn join(&mut self, request: JoinRequest) {
        let JoinRequest {
            participant: id,
            call_id,
            user_id,
            session_id,
            issued_ms,
            video,
            offer_sdp,
            signal,
            answered,
        } = request;
        let now = Instant::now();
        let creds = IceCreds::new();
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds.clone())
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(now);
        let candidate = match Candidate::host(self.advertised, "udp") {
            Ok(candidate) => candidate,
            Err(error) => {
                let _ = answered.send(Err(JoinError::Internal(error.to_string())));
                return;
            }
        };
        rtc.add_local_candidate(candidate);
        let answer = SdpOffer::from_sdp_string(&offer_sdp)
            .map_err(|e| JoinError::Sdp(e.to_string()))
            .and_then(|offer| rtc.sdp_api().accept_offer(offer).map_err(|e| JoinError::Sdp(e.to_string())));
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                let _ = answered.send(Err(error));
                return;
            }
        };
        let _ = self.routes.send(RouteUpdate::Ufrag(creds.ufrag.clone(), self.index));
        if answered.send(Ok(answer.to_sdp_string())).is_err() {
            // The socket went away meanwhile: nothing changes, the route included.
            let _ = self.routes.send(RouteUpdate::ForgetUfrag(creds.ufrag));
            return;
        }
        // The same user joining again (a reconnect) replaces the old connection.
        let previous: Vec<ParticipantId> = self
            .room(call_id)
            .iter()
            .copied()
            .filter(|p| self.participants.get(p).is_some_and(|p| p.user_id == user_id))
            .collect();
        for old in previous {
            // Not a leave: the api must not end a 1:1 call because a phone changed networks.
            self.depart(old, Some("joined again from another connection"), LeaveReport::Never);
        }
        // Back within the grace: the earlier connection's loss is not a leave.
        self.pending_leaves.remove(&(call_id, user_id));
        self.by_ufrag.insert(creds.ufrag.clone(), id);
        let mut participant = Participant {
            call_id,
            user_id,
            session_id,
            issued_ms,
            video,
            rtc,
            ufrag: creds.ufrag,
            addresses: BTreeSet::new(),
            signal,
            pending: None,
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            wake_at: now,
            last_heard: now,
            connected: false,
            nacks_seen: HashMap::new(),
        };
        // Everything the others already send, this one will receive.
        for other in self.room(call_id) {
            if let Some(p) = self.participants.get(other) {
                for track in p.tracks_in.iter().filter(|t| video || t.kind != MediaKind::Video) {
                    participant.tracks_out.push(TrackOut::new(*other, track.mid, track.kind));
                }
            }
        }
        let room = self.rooms.entry(call_id).or_default();
        if room.is_empty() {
            self.metrics.rooms_changed(1);
        }
        room.push(id);
        self.metrics.participants_changed(1);
        self.participants.insert(id, participant);
        tracing::info!(%call_id, %user_id, participant = id, shard = self.index, "participant joined");
        let mut work = VecDeque::new();
        self.negotiate(id, &mut work);
        self.drain(id, &mut work);
        self.process(work);
        self.announce(call_id);
    }

    fn room(&self, call_id: Uuid) -> &[ParticipantId] {
        self.rooms.get(&call_id).map(Vec::as_slice).unwrap_or_default()
    }

    fn answer(&mut self, id: ParticipantId, sdp: &str) {
        let mut work = VecDeque::new();
        let mut opened: Vec<(ParticipantId, Mid, Option<Rid>)> = Vec::new();
        {
            let Some(p) = self.participants.get_mut(&id) else { return };
            let Some(pending) = p.pending.take() else {
                tracing::debug!(participant = id, "ignoring an answer to no pending offer");
                return;
            };
            let answer = match SdpAnswer::from_sdp_string(sdp) {
                Ok(answer) => answer,
                Err(error) => {
                    // Keep the offer open: the client may still send a good answer.
                    tracing::info!(participant = id, %error, "malformed SDP answer");
                    p.pending = Some(pending);
                    return;
                }
            };
            match p.rtc.sdp_api().accept_answer(pending, answer) {
                Ok(()) => {
                    p.tracks_out.retain(|t| !matches!(t.state, OutState::Stopping(_)));
                    for track in &mut p.tracks_out {
                        if let OutState::Negotiating(mid) = track.state {
                            track.state = OutState::Open(mid);
                            opened.push((track.source, track.source_mid, track.wanted));
                        }
                    }
                }
                Err(error) => {
                    tracing::info!(participant = id, %error, "SDP answer refused; offering again");
                    for track in &mut p.tracks_out {
                        track.state = match track.state {
                            OutState::Negotiating(_) => OutState::ToOpen,
                            OutState::Stopping(mid) => OutState::ToStop(mid),
                            other => other,
                        };
                    }
                }
            }
        }
        // New subscribers need a keyframe to start decoding.
        for (source, source_mid, wanted) in opened {
            let layer = self.layer_for(source, source_mid, wanted);
            self.request_keyframe(source, source_mid, layer, KeyframeRequestKind::Pli, true, &mut work);
        }
        self.negotiate(id, &mut work);
        self.drain(id, &mut work);
        self.process(work);
        if let Some(call_id) = self.participants.get(&id).map(|p| p.call_id) {
            self.announce(call_id);
        }
    }

    /// Sends the next offer, if tracks wait for one and no offer is outstanding.
    fn negotiate(&mut self, id: ParticipantId, work: &mut VecDeque<Work>) {
        let users: HashMap<ParticipantId, Uuid> = self.participants.iter().map(|(k, p)| (*k, p.user_id)).collect();
        let Some(p) = self.participants.get_mut(&id) else { return };
        if p.pending.is_some()
            || !p.tracks_out.iter().any(|t| matches!(t.state, OutState::ToOpen | OutState::ToStop(_)))
        {
            return;
        }
        let mut api = p.rtc.sdp_api();
        for track in &mut p.tracks_out {
            match track.state {
                OutState::ToOpen => {
                    let stream = users.get(&track.source).map(Uuid::to_string);
                    let track_id = stream.as_ref().map(|s| format!("{}-{}", &s[..8], track.source_mid));
                    let mid = api.add_media(track.kind, Direction::SendOnly, stream, track_id, None);
                    track.state = OutState::Negotiating(mid);
                }
                OutState::ToStop(mid) => {
                    api.stop_media(mid);
                    track.state = OutState::Stopping(mid);
                }
                _ => {}
            }
        }
        if let Some((offer, pending)) = api.apply() {
            p.pending = Some(pending);
            let _ = p.signal.send(Signal::Offer(offer.to_sdp_string()));
        }
        self.drain(id, work);
    }

    /// Tells everyone in the room who is there and which of their mids carry whose media.
    fn announce(&self, call_id: Uuid) {
        let room = self.room(call_id);
        for id in room {
            let Some(p) = self.participants.get(id) else { continue };
            let others: Vec<Value> = room
                .iter()
                .filter(|other| *other != id)
                .filter_map(|other| self.participants.get(other).map(|o| (*other, o)))
                .map(|(other, o)| {
                    let tracks: Vec<Value> = p
                        .tracks_out
                        .iter()
                        .filter_map(|t| match t.state {
                            OutState::Open(mid) if t.source == other => Some(json!({
                                "mid": mid.to_string(),
                                "kind": kind_name(t.kind),
                            })),
                            _ => None,
                        })
                        .collect();
                    json!({"user_id": o.user_id, "tracks": tracks})
                })
                .collect();
            let _ = p.signal.send(Signal::Participants(json!(others)));
        }
    }

    fn packet(&mut self, source: SocketAddr, contents: &[u8], at: Instant) {
        let id = match self.by_addr.get(&source) {
            Some(id) => *id,
            None => {
                let Some(id) = stun::local_ufrag(contents).and_then(|u| self.by_ufrag.get(u)).copied() else {
                    return;
                };
                self.by_addr.insert(source, id);
                if let Some(p) = self.participants.get_mut(&id) {
                    p.addresses.insert(source);
                }
                id
            }
        };
        if self.blackholed(id, at) {
            return;
        }
        let Some(p) = self.participants.get_mut(&id) else { return };
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.advertised, contents) else { return };
        let input = Input::Receive(at, receive);
        if !p.rtc.accepts(&input) {
            return;
        }
        p.last_heard = at;
        if let Err(error) = p.rtc.handle_input(input) {
            tracing::info!(participant = id, %error, "dropping a participant whose connection failed");
            self.lose(id, Some("media connection failed"));
            return;
        }
        let mut work = VecDeque::new();
        self.drain(id, &mut work);
        self.process(work);
    }

    fn fire_timers(&mut self, now: Instant) {
        let mut work = VecDeque::new();
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let failed = match self.participants.get_mut(&id) {
                Some(p) => p.rtc.handle_input(Input::Timeout(now)).is_err(),
                None => continue,
            };
            if failed {
                self.lose(id, Some("media connection failed"));
                continue;
            }
            self.drain(id, &mut work);
        }
        self.process(work);
    }

    fn check_liveness(&mut self, now: Instant) {
        let silent: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| now.duration_since(p.last_heard) > self.peer_timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            tracing::info!(participant = id, "participant timed out");
            self.lose(id, Some("timed out: no media or ICE from the participant"));
        }
        let due: Vec<(Uuid, Uuid)> =
            self.pending_leaves.iter().filter(|(_, (due, _))| *due <= now).map(|(key, _)| *key).collect();
        for (call_id, user_id) in due {
            if let Some((_, at)) = self.pending_leaves.remove(&(call_id, user_id)) {
                let _ = self.reports.send(SfuReport { call_id, user_id, connected: false, at });
            }
        }
        self.blackholes.retain(|_, until| *until > now);
    }

    /// Polls one participant's `Rtc` until it has nothing more to say: sends its datagrams,
    /// queues its events, sets its timer.
    fn drain(&mut self, id: ParticipantId, work: &mut VecDeque<Work>) {
        let mut failed = false;
        let cut_off = self.blackholed(id, Instant::now());
        {
            let Some(p) = self.participants.get_mut(&id) else { return };
            loop {
                match p.rtc.poll_output() {
                    Ok(Output::Timeout(at)) => {
                        let at = at.min(Instant::now() + MAX_WAIT);
                        self.timers.remove(&(p.wake_at, id));
                        p.wake_at = at;
                        self.timers.insert((at, id));
                        break;
                    }
                    Ok(Output::Transmit(transmit)) => {
                        // Only datagrams big enough to be video count, so the losses hit video.
                        if self.drop_every_nth_rtp > 0 && transmit.contents.len() > 200 && is_rtp(&transmit.contents) {
                            self.rtp_sent += 1;
                            if self.rtp_sent.is_multiple_of(self.drop_every_nth_rtp) {
                                continue;
                            }
                        }
                        if cut_off {
                            continue;
                        }
                        // A full socket buffer drops the datagram, as the network would.
                        if self.socket.try_send_to(&transmit.contents, transmit.destination).is_ok() {
                            self.metrics.udp_out(transmit.contents.len());
                        }
                    }
                    Ok(Output::Event(event)) => work.push_back(Work::Event(id, event)),
                    Err(error) => {
                        tracing::info!(participant = id, %error, "participant's connection failed");
                        failed = true;
                        break;
                    }
                }
            }
        }
        if failed {
            self.lose(id, Some("media connection failed"));
        }
    }

    fn process(&mut self, mut work: VecDeque<Work>) {
        while let Some(Work::Event(id, event)) = work.pop_front() {
            self.event(id, event, &mut work);
        }
    }

    fn event(&mut self, id: ParticipantId, event: Event, work: &mut VecDeque<Work>) {
        match event {
            Event::Connected => {
                let Some(p) = self.participants.get_mut(&id) else { return };
                p.connected = true;
                let report = SfuReport { call_id: p.call_id, user_id: p.user_id, connected: true, at: Utc::now() };
                let _ = self.reports.send(report);
                // A keyframe asked for when the tracks opened may have come before media could
                // reach this peer: ask again now that it can, so its first frame is not late.
                let opened: Vec<(ParticipantId, Mid, Option<Rid>)> = p
                    .tracks_out
                    .iter()
                    .filter(|t| matches!(t.state, OutState::Open(_)))
                    .map(|t| (t.source, t.source_mid, t.wanted))
                    .collect();
                for (source, source_mid, wanted) in opened {
                    let layer = self.layer_for(source, source_mid, wanted);
                    self.request_keyframe(source, source_mid, layer, KeyframeRequestKind::Pli, true, work);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.lose(id, Some("ICE disconnected"));
            }
            Event::MediaAdded(added) => {
                let receives = matches!(added.direction, Direction::RecvOnly | Direction::SendRecv);
                let Some(p) = self.participants.get_mut(&id) else { return };
                // An audio participant's video m-line stays unused: nothing of it is forwarded.
                let refused = added.kind == MediaKind::Video && !p.video;
                if !receives || refused || p.tracks_in.iter().any(|t| t.mid == added.mid) {
                    return;
                }
                let layers = added.simulcast.map(|s| s.recv.into_iter().map(|l| l.rid).collect()).unwrap_or_default();
                p.tracks_in.push(TrackIn {
                    mid: added.mid,
                    kind: added.kind,
                    layers,
                    last_keyframe_request: HashMap::new(),
                    last_seen: HashMap::new(),
                });
                let call_id = p.call_id;
                let others: Vec<ParticipantId> = self.room(call_id).iter().copied().filter(|o| *o != id).collect();
                for other in others {
                    if let Some(o) = self.participants.get_mut(&other) {
                        if o.video || added.kind != MediaKind::Video {
                            o.tracks_out.push(TrackOut::new(id, added.mid, added.kind));
                        }
                    }
                    self.negotiate(other, work);
                }
            }
            Event::MediaData(data) => self.forward(id, data, work),
            Event::KeyframeRequest(request) => {
                // A subscriber asks for a keyframe on one of its outgoing mids: relay it upstream.
                let source = self.participants.get(&id).and_then(|p| {
                    p.tracks_out.iter().find_map(|t| match t.state {
                        OutState::Open(mid) if mid == request.mid => Some((t.source, t.source_mid, t.current)),
                        _ => None,
                    })
                });
                if let Some((source, source_mid, layer)) = source {
                    self.request_keyframe(source, source_mid, layer, request.kind, false, work);
                }
            }
            Event::MediaEgressStats(stats) => {
                let Some(p) = self.participants.get_mut(&id) else { return };
                let seen = p.nacks_seen.entry(stats.mid).or_default();
                if stats.nacks > *seen {
                    self.metrics.nacks.add(stats.nacks - *seen, &[]);
                    *seen = stats.nacks;
                }
            }
            _ => {}
        }
    }

    /// Sends one received frame to every other participant subscribed to it. With simulcast,
    /// each subscriber gets its own layer: the one it asked for, else the publisher's best, and a
    /// change of layer takes effect at that layer's next keyframe (asked for at once).
    fn forward(&mut self, id: ParticipantId, data: MediaData, work: &mut VecDeque<Work>) {
        let now = Instant::now();
        let Some(p) = self.participants.get_mut(&id) else { return };
        let Some(track) = p.tracks_in.iter_mut().find(|t| t.mid == data.mid) else { return };
        if let Some(rid) = data.rid {
            track.last_seen.insert(rid, now);
        }
        let layers = track.layers.clone();
        let active: Vec<Rid> = layers.iter().copied().filter(|rid| track.is_sent(*rid, now)).collect();
        let call_id = p.call_id;
        if !data.contiguous {
            self.request_keyframe(id, data.mid, data.rid, KeyframeRequestKind::Fir, false, work);
        }
        let keyframe = data.is_keyframe();
        let mut wanted_keyframes: Vec<Rid> = Vec::new();
        for Subscriber { participant: subscriber, track, mid } in self.subscribers(call_id, id, data.mid) {
            let Some(s) = self.participants.get_mut(&subscriber) else { continue };
            // Forwarding to an earlier subscriber may have dropped a track here (a departure) and
            // moved the others: then this frame's track is looked up again.
            let still = s.tracks_out.get(track).is_some_and(|t| t.open_mid_for(id, data.mid) == Some(mid));
            let found = if still { Some((track, mid)) } else { open_track(&s.tracks_out, id, data.mid) };
            let Some((track, mid)) = found else { continue };
            let Some(out) = s.tracks_out.get_mut(track) else { continue };
            let (forwarded, awaited) = out.take_frame(&layers, &active, data.rid, keyframe);
            if let Some(rid) = awaited.filter(|rid| !wanted_keyframes.contains(rid)) {
                wanted_keyframes.push(rid);
            }
            if !forwarded {
                continue;
            }
            let Some(writer) = s.rtc.writer(mid) else { continue };
            let Some(pt) = writer.match_params(data.params) else { continue };
            match writer.write(pt, data.network_time, data.time, data.data.clone()) {
                Ok(()) => self.metrics.frame_forwarded(data.data.len()),
                Err(error) => tracing::debug!(participant = subscriber, %error, "could not forward a frame"),
            }
            self.drain(subscriber, work);
        }
        for rid in wanted_keyframes {
            self.request_keyframe(id, data.mid, Some(rid), KeyframeRequestKind::Pli, false, work);
        }
    }

    /// Who a frame of `source`'s `source_mid` goes to: every other participant of room `call_id`
    /// whose m-line for it is open, with where that is (so forwarding searches no further).
    fn subscribers(&self, call_id: Uuid, source: ParticipantId, source_mid: Mid) -> Vec<Subscriber> {
        self.room(call_id)
            .iter()
            .copied()
            .filter(|o| *o != source)
            .filter_map(|participant| {
                let (track, mid) = open_track(&self.participants.get(&participant)?.tracks_out, source, source_mid)?;
                Some(Subscriber { participant, track, mid })
            })
            .collect()
    }

    /// The layer a subscriber of `source`'s `source_mid` wanting `wanted` is to get.
    fn layer_for(&self, source: ParticipantId, source_mid: Mid, wanted: Option<Rid>) -> Option<Rid> {
        let track = self.participants.get(&source)?.tracks_in.iter().find(|t| t.mid == source_mid)?;
        track.layer_for(wanted, Instant::now())
    }

    /// A subscriber picks the simulcast layer of one of its outgoing tracks (by its own mid).
    fn choose_layer(&mut self, id: ParticipantId, mid: &str, rid: &str) {
        let Some(s) = self.participants.get_mut(&id) else { return };
        let Some(out) = s.tracks_out.iter_mut().find(|t| matches!(t.state, OutState::Open(m) if &*m == mid)) else {
            return;
        };
        let wanted = Some(Rid::from(rid));
        if out.wanted == wanted {
            return;
        }
        out.wanted = wanted;
        let (source, source_mid) = (out.source, out.source_mid);
        let layer = self.layer_for(source, source_mid, wanted);
        let mut work = VecDeque::new();
        self.request_keyframe(source, source_mid, layer, KeyframeRequestKind::Pli, true, &mut work);
        self.process(work);
    }

    fn request_keyframe(
        &mut self,
        source: ParticipantId,
        source_mid: Mid,
        layer: Option<Rid>,
        kind: KeyframeRequestKind,
        force: bool,
        work: &mut VecDeque<Work>,
    ) {
        let Some(p) = self.participants.get_mut(&source) else { return };
        let Some(track) = p.tracks_in.iter_mut().find(|t| t.mid == source_mid) else { return };
        if track.kind != MediaKind::Video {
            return;
        }
        let now = Instant::now();
        let last = track.last_keyframe_request.get(&layer);
        if !force && last.is_some_and(|at| now.duration_since(*at) < KEYFRAME_REQUEST_GAP) {
            return;
        }
        track.last_keyframe_request.insert(layer, now);
        if let Some(mut writer) = p.rtc.writer(source_mid) {
            if writer.request_keyframe(layer, kind).is_ok() {
                self.metrics.keyframe_requests.add(1, &[]);
            }
        }
        self.drain(source, work);
    }

    /// Whether the test fault cuts this participant off the network now.
    fn blackholed(&self, id: ParticipantId, now: Instant) -> bool {
        !self.blackholes.is_empty()
            && self
                .participants
                .get(&id)
                .and_then(|p| self.blackholes.get(&p.user_id))
                .is_some_and(|until| *until > now)
    }

    /// Drops every peer whose right `revocation` ended; the api hears they left, as for any leave.
    fn revoke(&mut self, revocation: &Revocation) {
        let covered: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| revocation.covers(p.call_id, p.user_id, p.session_id, p.issued_ms))
            .map(|(id, _)| *id)
            .collect();
        for id in covered {
            tracing::info!(participant = id, ?revocation, "dropping a participant whose right ended");
            self.remove(id, Some(revocation.reason()));
        }
    }

    /// Drops every participant, telling each to join again. No leave is reported: the api moves
    /// the call to another node, where the same people carry on.
    fn evacuate(&mut self) {
        let everyone: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for id in everyone {
            if let Some(p) = self.participants.get(&id) {
                let _ = p.signal.send(Signal::Unavailable(TokenError::CutOff.to_string()));
            }
            self.depart(id, None, LeaveReport::Never);
        }
    }

    /// Takes a participant out of its room; the others stop receiving its tracks. `reason` is
    /// sent to its signaling socket when the SFU, not the client, ended it.
    fn remove(&mut self, id: ParticipantId, reason: Option<&str>) {
        self.depart(id, reason, LeaveReport::Now);
    }

    /// `remove` for a participant the SFU lost: the api hears it only if they do not come back.
    fn lose(&mut self, id: ParticipantId, reason: Option<&str>) {
        self.depart(id, reason, LeaveReport::AfterGrace);
    }

    fn depart(&mut self, id: ParticipantId, reason: Option<&str>, report: LeaveReport) {
        let Some(mut p) = self.participants.remove(&id) else { return };
        p.rtc.disconnect();
        self.timers.remove(&(p.wake_at, id));
        self.by_ufrag.remove(&p.ufrag);
        let _ = self.routes.send(RouteUpdate::ForgetUfrag(p.ufrag.clone()));
        for address in &p.addresses {
            self.by_addr.remove(address);
            let _ = self.routes.send(RouteUpdate::ForgetAddr(*address));
        }
        if let Some(reason) = reason {
            let _ = p.signal.send(Signal::Removed(reason.to_owned()));
        }
        self.metrics.participants_changed(-1);
        match report {
            LeaveReport::Now => {
                self.pending_leaves.remove(&(p.call_id, p.user_id));
                let report = SfuReport { call_id: p.call_id, user_id: p.user_id, connected: false, at: Utc::now() };
                let _ = self.reports.send(report);
            }
            LeaveReport::AfterGrace => {
                let due = Instant::now() + self.rejoin_grace;
                self.pending_leaves.insert((p.call_id, p.user_id), (due, Utc::now()));
            }
            LeaveReport::Never => {}
        }
        tracing::info!(call_id = %p.call_id, user_id = %p.user_id, participant = id, "participant left");

        let others: Vec<ParticipantId> = match self.rooms.get_mut(&p.call_id) {
            Some(room) => {
                room.retain(|o| *o != id);
                room.clone()
            }
            None => Vec::new(),
        };
        if others.is_empty() {
            if self.rooms.remove(&p.call_id).is_some() {
                self.metrics.rooms_changed(-1);
            }
            return;
        }
        let mut work = VecDeque::new();
        for other in &others {
            if let Some(o) = self.participants.get_mut(other) {
                o.tracks_out.retain_mut(|t| {
                    if t.source != id {
                        return true;
                    }
                    match t.state {
                        OutState::Open(mid) | OutState::Negotiating(mid) => {
                            t.state = OutState::ToStop(mid);
                            true
                        }
                        OutState::ToOpen => false,
                        OutState::ToStop(_) | OutState::Stopping(_) => true,
                    }
                });
            }
            self.negotiate(*other, &mut work);
        }
        self.process(work);
        self.announce(p.call_id);
    }
}

/// RTP rather than RTCP (RFC 5761: RTCP packet types 192–223 sit where RTP's marker and payload
/// type are), by the clear header of an SRTP datagram.
fn is_rtp(datagram: &[u8]) -> bool {
    datagram.len() >= 12 && datagram[0] & 0xC0 == 0x80 && !(192..=223).contains(&datagram[1])
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
