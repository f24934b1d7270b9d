//! The shard's room bookkeeping, routing and layer choice, driven with synthetic inputs: clients
//! are str0m `Rtc`s that only exchange SDP with the shard (no datagram goes anywhere), the api's
//! reports and the router's updates are read off their channels, and time is passed in.
//!
//! Without ICE and DTLS str0m never says a client's m-lines opened (`MediaAdded` waits for SRTP),
//! so the harness hands the shard that event itself, as str0m would build it from the
//! participant's `Rtc` once connected.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_domain::call::SfuReport;
use str0m::format::{Codec, CodecExtra};
use str0m::media::{Frequency, MediaAdded, MediaTime, Simulcast, SimulcastLayer};
use str0m::rtp::{ExtensionValues, SeqNo};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::*;
use crate::metrics::SfuMetrics;
use crate::rights::Revocation;
use crate::router::RouteUpdate;

const GRACE: Duration = Duration::from_secs(10);
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// One client: its own `Rtc` (to make offers and answer the SFU's) and what the shard told it.
struct Client {
    rtc: Rtc,
    signals: mpsc::UnboundedReceiver<Signal>,
    /// The latest `participants` announcement.
    announced: Option<Value>,
    removed: Vec<String>,
    /// What it was told when the node gave its calls up.
    unavailable: Vec<String>,
}

struct Harness {
    shard: Shard,
    reports: mpsc::UnboundedReceiver<SfuReport>,
    routes: mpsc::UnboundedReceiver<RouteUpdate>,
    metrics: Arc<SfuMetrics>,
    clients: HashMap<ParticipantId, Client>,
    next_id: ParticipantId,
}

impl Harness {
    async fn new() -> Self {
        // The shard needs a socket to send from; nothing in these tests gets as far as sending.
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("a local UDP socket"));
        let advertised = socket.local_addr().expect("its address");
        let (routes_tx, routes) = mpsc::unbounded_channel();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let metrics = Arc::new(SfuMetrics::new().expect("metrics"));
        let shard = Shard::new(ShardSettings {
            drop_every_nth_rtp: 0,
            socket,
            advertised,
            peer_timeout: PEER_TIMEOUT,
            rejoin_grace: GRACE,
            index: 3,
            routes: routes_tx,
            reports: reports_tx,
            metrics: Arc::clone(&metrics),
        });
        Self { shard, reports, routes, metrics, clients: HashMap::new(), next_id: 1 }
    }

    /// A harness with `N` new users joined, in order, to one new call with `join_audio`; returns
    /// the call and each user with its participant.
    async fn with_audio_users<const N: usize>() -> (Self, Uuid, [(Uuid, ParticipantId); N]) {
        let mut harness = Self::new().await;
        let call_id = Uuid::new_v4();
        let mut users = [(Uuid::nil(), 0); N];
        for user in &mut users {
            let user_id = Uuid::new_v4();
            *user = (user_id, harness.join_audio(call_id, user_id));
        }
        (harness, call_id, users)
    }

    /// `join` as most tests need it: video allowed, audio published.
    fn join_audio(&mut self, call_id: Uuid, user_id: Uuid) -> ParticipantId {
        self.join(call_id, user_id, true, &[MediaKind::Audio])
    }

    /// `join_with` without simulcast.
    fn join(&mut self, call_id: Uuid, user_id: Uuid, video: bool, kinds: &[MediaKind]) -> ParticipantId {
        self.join_with(call_id, user_id, video, kinds, &[])
    }

    /// `user_id` joins `call_id` with an offer publishing `kinds` (a video one with `simulcast`
    /// layers, if any), its m-lines open, and every offer the SFU then makes is answered.
    fn join_with(
        &mut self,
        call_id: Uuid,
        user_id: Uuid,
        video: bool,
        kinds: &[MediaKind],
        simulcast: &[&str],
    ) -> ParticipantId {
        let mut rtc = Rtc::builder().build(Instant::now());
        let (offer, pending, mids) = client_offer(&mut rtc, kinds, simulcast);
        let (id, answered) = self.send_join(call_id, user_id, video, offer.to_sdp_string(), rtc);
        let sdp = answered.expect("the shard answers").expect("the offer is accepted");
        let client = self.clients.get_mut(&id).expect("the client");
        let answer = SdpAnswer::from_sdp_string(&sdp).expect("the answer parses");
        client.rtc.sdp_api().accept_answer(pending, answer).expect("the client takes the answer");
        self.pump();
        self.open_media(id, &mids, simulcast);
        id
    }

    /// What str0m tells the shard once `participant`'s connection is up: its m-lines `mids`
    /// opened (the video one with `simulcast` layers).
    fn open_media(&mut self, participant: ParticipantId, mids: &[Mid], simulcast: &[&str]) {
        let mut work = VecDeque::new();
        for mid in mids {
            let media = self.shard.participants[&participant].rtc.media(*mid).expect("the SFU has the m-line");
            let layers = (media.kind() == MediaKind::Video && !simulcast.is_empty()).then(|| {
                let mut layers = Simulcast::new();
                layers.recv = simulcast.iter().map(|rid| SimulcastLayer::new(rid)).collect();
                layers
            });
            let added = MediaAdded { mid: *mid, kind: media.kind(), direction: media.direction(), simulcast: layers };
            self.shard.event(participant, Event::MediaAdded(added), &mut work);
        }
        self.shard.process(work);
        self.pump();
    }

    /// Hands the shard a `Join` and returns what it answered (`None`: nothing yet).
    fn send_join(
        &mut self,
        call_id: Uuid,
        user_id: Uuid,
        video: bool,
        offer_sdp: String,
        rtc: Rtc,
    ) -> (ParticipantId, Option<Result<String, JoinError>>) {
        let (request, signals, mut answer) = self.join_request(call_id, user_id, video, offer_sdp);
        let id = request.participant;
        self.clients.insert(id, Client { rtc, signals, announced: None, removed: Vec::new(), unavailable: Vec::new() });
        self.shard.handle(ShardInput::Join(request));
        (id, answer.try_recv().ok())
    }

    /// A `Join` for a new participant, with the receiving ends of its signaling socket and of
    /// the shard's answer.
    fn join_request(
        &mut self,
        call_id: Uuid,
        user_id: Uuid,
        video: bool,
        offer_sdp: String,
    ) -> (JoinRequest, mpsc::UnboundedReceiver<Signal>, oneshot::Receiver<Result<String, JoinError>>) {
        let participant = self.next_id;
        self.next_id += 1;
        let (signal, signals) = mpsc::unbounded_channel();
        let (answered, answer) = oneshot::channel();
        let request = JoinRequest {
            participant,
            call_id,
            user_id,
            session_id: Uuid::new_v4(),
            issued_ms: 1_000,
            video,
            offer_sdp,
            signal,
            answered,
        };
        (request, signals, answer)
    }

    /// Delivers the shard's signals to the clients and their answers back, until all is quiet.
    fn pump(&mut self) {
        loop {
            let mut answers = Vec::new();
            for (id, client) in &mut self.clients {
                while let Ok(signal) = client.signals.try_recv() {
                    match signal {
                        Signal::Offer(sdp) => {
                            let offer = SdpOffer::from_sdp_string(&sdp).expect("the SFU's offer parses");
                            let answer = client.rtc.sdp_api().accept_offer(offer).expect("the client answers");
                            answers.push((*id, answer.to_sdp_string()));
                        }
                        Signal::Participants(value) => client.announced = Some(value),
                        Signal::Removed(reason) => client.removed.push(reason),
                        Signal::Unavailable(reason) => client.unavailable.push(reason),
                    }
                }
            }
            if answers.is_empty() {
                return;
            }
            for (participant, sdp) in answers {
                self.shard.handle(ShardInput::Answer { participant, sdp });
            }
        }
    }

    fn leave(&mut self, participant: ParticipantId, said: bool) {
        self.shard.handle(ShardInput::Leave { participant, said });
        self.pump();
    }

    fn reports(&mut self) -> Vec<SfuReport> {
        std::iter::from_fn(|| self.reports.try_recv().ok()).collect()
    }

    /// Asserts that the api was sent one report since the last look, that `user_id` left
    /// `call_id`, and returns it.
    #[track_caller]
    fn only_report_is_a_leave(&mut self, call_id: Uuid, user_id: Uuid) -> SfuReport {
        let reports = self.reports();
        assert_eq!(reports.len(), 1);
        assert!(is_left(&reports[0], call_id, user_id));
        reports.into_iter().next().expect("the report")
    }

    /// Runs the liveness check well after the rejoin grace of any loss so far is over.
    fn check_liveness_after_the_grace(&mut self) {
        self.shard.check_liveness(Instant::now() + GRACE * 2);
    }

    fn routes(&mut self) -> Vec<RouteUpdate> {
        std::iter::from_fn(|| self.routes.try_recv().ok()).collect()
    }

    fn room(&self, call_id: Uuid) -> Option<Vec<ParticipantId>> {
        self.shard.rooms.get(&call_id).cloned()
    }

    /// The users `participant` was last told are in its room, with the kinds of media it gets
    /// from each (by the mids it was told about).
    fn announced(&self, participant: ParticipantId) -> HashMap<Uuid, Vec<(String, String)>> {
        let value = self.clients[&participant].announced.clone().expect("an announcement");
        let others = value.as_array().expect("a list").clone();
        others
            .into_iter()
            .map(|other| {
                let user: Uuid = serde_json::from_value(other["user_id"].clone()).expect("a user id");
                let tracks = other["tracks"]
                    .as_array()
                    .expect("tracks")
                    .iter()
                    .map(|t| (t["mid"].as_str().expect("mid").to_owned(), t["kind"].as_str().expect("kind").to_owned()))
                    .collect();
                (user, tracks)
            })
            .collect()
    }

    /// The mid on which `participant` publishes its (first) track of `kind`.
    fn published(&self, participant: ParticipantId, kind: MediaKind) -> Mid {
        self.shard.participants[&participant]
            .tracks_in
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.mid)
            .expect("a published track of that kind")
    }

    /// `subscribers` of `source`'s `source_mid`, sorted, in the room the shard has it in.
    fn subscribers(&self, source: ParticipantId, source_mid: Mid) -> Vec<(ParticipantId, Mid)> {
        let call_id = self.shard.participants[&source].call_id;
        let mut subscribers: Vec<(ParticipantId, Mid)> =
            self.shard.subscribers(call_id, source, source_mid).into_iter().map(|s| (s.participant, s.mid)).collect();
        subscribers.sort();
        subscribers
    }

    /// The participants `subscribers` lists, without the mids.
    fn subscriber_ids(&self, source: ParticipantId, source_mid: Mid) -> Vec<ParticipantId> {
        self.subscribers(source, source_mid).iter().map(|(subscriber, _)| *subscriber).collect()
    }

    /// The kinds of media `participant` was last told it gets from `user_id`, sorted.
    fn announced_kinds(&self, participant: ParticipantId, user_id: Uuid) -> Vec<String> {
        let mut kinds: Vec<String> =
            self.announced(participant)[&user_id].iter().map(|(_, kind)| kind.clone()).collect();
        kinds.sort();
        kinds
    }

    /// An Opus frame from `publisher` on `mid`, as str0m would hand it to the shard.
    fn audio_frame(&self, publisher: ParticipantId, mid: Mid) -> MediaData {
        let params = *self.shard.participants[&publisher]
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == Codec::Opus)
            .expect("opus is configured");
        MediaData {
            mid,
            pt: params.pt(),
            rid: None,
            params,
            time: MediaTime::new(960, Frequency::FORTY_EIGHT_KHZ),
            network_time: Instant::now(),
            seq_range: SeqNo::from(1)..=SeqNo::from(1),
            contiguous: true,
            data: Arc::from(&[0xf8_u8, 0xff, 0xfe][..]),
            ext_vals: ExtensionValues::default(),
            codec_extra: CodecExtra::None,
            last_sender_info: None,
            audio_start_of_talk_spurt: false,
        }
    }

    fn frames_forwarded(&self) -> u64 {
        let rendered = self.metrics.render();
        rendered
            .lines()
            .find(|line| line.starts_with("sfu_forwarded_frames"))
            .and_then(|line| line.split_whitespace().last())
            .map_or(0, |value| value.parse().expect("a count"))
    }
}

fn client_offer(rtc: &mut Rtc, kinds: &[MediaKind], simulcast: &[&str]) -> (SdpOffer, SdpPendingOffer, Vec<Mid>) {
    let mut api = rtc.sdp_api();
    let mut mids = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let layers = (*kind == MediaKind::Video && !simulcast.is_empty()).then(|| {
            let mut layers = Simulcast::new();
            layers.send = simulcast.iter().map(|rid| SimulcastLayer::new(rid)).collect();
            layers
        });
        mids.push(api.add_media(*kind, Direction::SendOnly, Some("stream".into()), Some(format!("track-{i}")), layers));
    }
    let (offer, pending) = api.apply().expect("an offer");
    (offer, pending, mids)
}

fn is_left(report: &SfuReport, call_id: Uuid, user_id: Uuid) -> bool {
    report.call_id == call_id && report.user_id == user_id && !report.connected
}

fn rids(names: &[&str]) -> Vec<Rid> {
    names.iter().map(|name| Rid::from(*name)).collect()
}

// Room bookkeeping.

#[tokio::test]
async fn a_join_answers_the_offer_and_creates_the_room() {
    let (mut h, call, [(user, a)]) = Harness::with_audio_users().await;

    assert_eq!(h.room(call), Some(vec![a]));
    let p = &h.shard.participants[&a];
    assert_eq!((p.call_id, p.user_id), (call, user));
    assert_eq!(p.tracks_in.len(), 1, "its audio is taken as published");
    // The router learns where binding requests for its ufrag go (this shard).
    let ufrag = p.ufrag.clone();
    let routes = h.routes();
    assert!(matches!(&routes[..], [RouteUpdate::Ufrag(routed, 3)] if *routed == ufrag));
    assert_eq!(h.shard.by_ufrag.get(&ufrag), Some(&a));
    assert!(h.announced(a).is_empty(), "alone in the room");
    assert!(h.reports().is_empty(), "joining is reported on connection, not on join");
}

#[tokio::test]
async fn the_api_hears_of_a_participant_once_its_connection_is_up() {
    let (mut h, call, [(user, a)]) = Harness::with_audio_users().await;
    assert!(h.reports().is_empty());

    let mut work = VecDeque::new();
    h.shard.event(a, Event::Connected, &mut work);
    h.shard.process(work);

    let reports = h.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].call_id, reports[0].user_id, reports[0].connected), (call, user, true));
}

#[tokio::test]
async fn a_malformed_offer_is_refused_and_joins_nobody() {
    let mut h = Harness::new().await;
    let call = Uuid::new_v4();
    let rtc = Rtc::builder().build(Instant::now());
    let (_, answered) = h.send_join(call, Uuid::new_v4(), true, "v=0 garbage".to_owned(), rtc);

    assert!(matches!(answered, Some(Err(JoinError::Sdp(_)))));
    assert_eq!(h.room(call), None);
    assert!(h.shard.participants.is_empty());
    assert!(h.routes().is_empty(), "no ufrag is routed for a refused join");
}

#[tokio::test]
async fn participants_of_a_room_are_told_about_each_other() {
    let (h, call, [(alice, a), (bob, b)]) = Harness::with_audio_users().await;

    assert_eq!(h.room(call), Some(vec![a, b]));
    assert_eq!(h.announced(a).keys().collect::<Vec<_>>(), vec![&bob]);
    assert_eq!(h.announced(b).keys().collect::<Vec<_>>(), vec![&alice]);
    // Each gets the other's audio on a mid of its own, once it answered the SFU's offer.
    assert_eq!(h.announced_kinds(a, bob), vec!["audio"]);
    assert_eq!(h.announced_kinds(b, alice), vec!["audio"]);
}

#[tokio::test]
async fn a_leave_removes_the_participant_and_the_others_stop_getting_its_tracks() {
    let (mut h, call, [(_, a), (_, b)]) = Harness::with_audio_users().await;
    let a_ufrag = h.shard.participants[&a].ufrag.clone();
    let a_audio = h.published(a, MediaKind::Audio);
    h.routes();

    h.leave(a, true);

    assert_eq!(h.room(call), Some(vec![b]));
    assert!(!h.shard.participants.contains_key(&a));
    assert!(!h.shard.by_ufrag.contains_key(&a_ufrag));
    assert!(h.routes().iter().any(|r| matches!(r, RouteUpdate::ForgetUfrag(u) if *u == a_ufrag)));
    assert!(h.announced(b).is_empty(), "bob is told alice is gone");
    // Bob's m-line for alice's audio was stopped by a new offer he answered: nothing of hers
    // goes out any more.
    assert!(h.shard.participants[&b].tracks_out.iter().all(|t| t.source != a));
    assert!(h.shard.subscribers(call, a, a_audio).is_empty());
    assert!(h.clients[&a].removed.is_empty(), "a client that said leave is not told it was removed");
}

#[tokio::test]
async fn the_last_leave_drops_the_room() {
    let (mut h, call, [(_, a), (_, b)]) = Harness::with_audio_users().await;

    h.leave(a, true);
    assert!(h.room(call).is_some(), "bob is still there");
    h.leave(b, false);

    assert_eq!(h.room(call), None);
    assert!(h.shard.rooms.is_empty());
    assert!(h.shard.participants.is_empty());
    assert!(h.shard.by_ufrag.is_empty());
}

#[tokio::test]
async fn a_leave_in_one_room_leaves_another_room_alone() {
    let mut h = Harness::new().await;
    let (call_1, call_2) = (Uuid::new_v4(), Uuid::new_v4());
    let a = h.join_audio(call_1, Uuid::new_v4());
    let c = h.join_audio(call_2, Uuid::new_v4());
    let d = h.join_audio(call_2, Uuid::new_v4());

    h.leave(a, true);

    assert_eq!(h.room(call_1), None);
    assert_eq!(h.room(call_2), Some(vec![c, d]));
    let d_audio = h.published(d, MediaKind::Audio);
    assert_eq!(h.subscribers(d, d_audio).len(), 1);
}

#[tokio::test]
async fn a_said_leave_is_reported_at_once() {
    let (mut h, call, [(user, a)]) = Harness::with_audio_users().await;

    h.leave(a, true);

    h.only_report_is_a_leave(call, user);
    assert!(h.shard.pending_leaves.is_empty());
    h.check_liveness_after_the_grace();
    assert!(h.reports().is_empty(), "reported once");
}

#[tokio::test]
async fn a_lost_participant_is_reported_only_once_the_grace_is_over() {
    let (mut h, call, [(user, a)]) = Harness::with_audio_users().await;
    let lost_at = Utc::now();

    h.leave(a, false);

    assert_eq!(h.room(call), None, "the peer itself is gone at once");
    assert!(h.reports().is_empty(), "not yet reported");
    h.shard.check_liveness(Instant::now() + GRACE / 2);
    assert!(h.reports().is_empty(), "still within the grace");
    h.shard.check_liveness(Instant::now() + GRACE + Duration::from_millis(10));
    let report = h.only_report_is_a_leave(call, user);
    // Reported as of when the SFU lost them, not when the grace ran out.
    assert!((report.at - lost_at).num_seconds().abs() < 2);
    h.shard.check_liveness(Instant::now() + GRACE * 3);
    assert!(h.reports().is_empty(), "reported once");
}

#[tokio::test]
async fn a_rejoin_within_the_grace_is_not_a_leave() {
    let (mut h, call, [(user, a)]) = Harness::with_audio_users().await;
    h.leave(a, false);

    let again = h.join_audio(call, user);
    h.check_liveness_after_the_grace();

    assert!(h.reports().is_empty(), "the api never hears of the lost connection");
    assert_eq!(h.room(call), Some(vec![again]));
}

#[tokio::test]
async fn another_user_joining_does_not_cancel_a_pending_leave() {
    let (mut h, call, [(alice, a)]) = Harness::with_audio_users().await;
    h.leave(a, false);

    h.join_audio(call, Uuid::new_v4());
    h.check_liveness_after_the_grace();

    h.only_report_is_a_leave(call, alice);
}

#[tokio::test]
async fn a_said_leave_after_a_rejoin_is_reported_once_at_once() {
    let (mut h, call, [(user, a)]) = Harness::with_audio_users().await;
    h.leave(a, false);
    let again = h.join_audio(call, user);

    h.leave(again, true);

    h.only_report_is_a_leave(call, user);
    h.check_liveness_after_the_grace();
    assert!(h.reports().is_empty(), "the earlier loss is not reported on top");
}

#[tokio::test]
async fn joining_again_replaces_the_earlier_connection_without_a_leave() {
    let (mut h, call, [(alice, first), (_, b)]) = Harness::with_audio_users().await;
    let first_ufrag = h.shard.participants[&first].ufrag.clone();
    h.routes();

    let second = h.join_audio(call, alice);

    assert_eq!(h.room(call), Some(vec![b, second]));
    assert!(!h.shard.participants.contains_key(&first));
    assert_eq!(h.clients[&first].removed, vec!["joined again from another connection".to_owned()]);
    assert!(h.routes().iter().any(|r| matches!(r, RouteUpdate::ForgetUfrag(u) if *u == first_ufrag)));
    // Bob gets alice's new connection's audio, and only that.
    let to_b = h.announced(b);
    assert_eq!(to_b.len(), 1);
    assert_eq!(to_b[&alice].len(), 1);
    let second_audio = h.published(second, MediaKind::Audio);
    assert_eq!(h.subscriber_ids(second, second_audio), vec![b]);
    h.check_liveness_after_the_grace();
    assert!(h.reports().is_empty(), "a reconnect is no leave");
}

#[tokio::test]
async fn a_silent_participant_times_out_as_a_loss() {
    let (mut h, call, [(user, a)]) = Harness::with_audio_users().await;

    h.shard.check_liveness(Instant::now() + PEER_TIMEOUT / 2);
    assert_eq!(h.room(call), Some(vec![a]), "not silent for long enough");
    // Nothing heard from it for longer than the timeout.
    let long_ago = Instant::now().checked_sub(PEER_TIMEOUT + Duration::from_secs(1)).expect("an uptime over a minute");
    h.shard.participants.get_mut(&a).expect("a").last_heard = long_ago;
    h.shard.check_liveness(Instant::now());
    h.pump();

    assert_eq!(h.room(call), None);
    assert_eq!(h.clients[&a].removed.len(), 1);
    assert!(h.clients[&a].removed[0].starts_with("timed out"));
    assert!(h.reports().is_empty(), "a loss waits for the grace");
    h.shard.check_liveness(Instant::now() + GRACE + Duration::from_millis(10));
    h.only_report_is_a_leave(call, user);
}

#[tokio::test]
async fn a_revoked_right_drops_only_the_peers_it_covers_and_reports_at_once() {
    let (mut h, call, [(alice, a), (_, b)]) = Harness::with_audio_users().await;
    let other_call = Uuid::new_v4();
    let c = h.join_audio(other_call, alice);

    h.shard.handle(ShardInput::Revoke(Revocation::Participant {
        call_id: call,
        user_id: alice,
        at_ms: 2_000,
        removed: false,
    }));
    h.pump();

    assert_eq!(h.room(call), Some(vec![b]));
    assert_eq!(h.room(other_call), Some(vec![c]), "alice's place in another call is untouched");
    assert_eq!(h.clients[&a].removed, vec!["you left this call".to_owned()]);
    h.only_report_is_a_leave(call, alice);
}

#[tokio::test]
async fn evacuating_drops_everyone_tells_each_to_join_again_and_reports_no_leave() {
    let (mut h, call, [(alice, a), (_, b)]) = Harness::with_audio_users().await;
    let other_call = Uuid::new_v4();
    let c = h.join_audio(other_call, alice);

    h.shard.handle(ShardInput::Evacuate);
    h.pump();

    assert_eq!((h.room(call), h.room(other_call)), (None, None));
    for id in [a, b, c] {
        assert_eq!(h.clients[&id].unavailable.len(), 1, "participant {id}");
        assert!(h.clients[&id].removed.is_empty(), "an evacuation is not a removal");
    }
    // The call carries on on another node: nobody left it.
    assert!(h.reports().is_empty());
    assert!(h.shard.pending_leaves.is_empty());
}

#[tokio::test]
async fn a_leave_of_an_unknown_participant_changes_nothing() {
    let (mut h, call, [(_, a)]) = Harness::with_audio_users().await;
    h.routes();

    h.leave(a + 100, true);
    h.leave(a + 101, false);

    assert_eq!(h.room(call), Some(vec![a]));
    assert!(h.reports().is_empty());
    assert!(h.routes().is_empty());
    assert!(h.shard.pending_leaves.is_empty());
}

// Routing.

#[tokio::test]
async fn a_publishers_media_goes_to_everyone_else_in_its_room_only() {
    let mut h = Harness::new().await;
    let (call, other_call) = (Uuid::new_v4(), Uuid::new_v4());
    let (alice, bob, carol) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let a = h.join(call, alice, true, &[MediaKind::Audio, MediaKind::Video]);
    let b = h.join_audio(call, bob);
    let c = h.join_audio(call, carol);
    let d = h.join_audio(other_call, Uuid::new_v4());

    for kind in [MediaKind::Audio, MediaKind::Video] {
        let mid = h.published(a, kind);
        let subscribers = h.subscribers(a, mid);
        let who: Vec<ParticipantId> = subscribers.iter().map(|(s, _)| *s).collect();
        assert_eq!(who, vec![b, c], "{kind:?}: neither back to alice nor across rooms");
        // Each goes out on the mid the subscriber was told carries alice's media of that kind.
        for (subscriber, out_mid) in subscribers {
            let announced = h.announced(subscriber);
            assert!(announced[&alice].contains(&(out_mid.to_string(), kind_name(kind).to_owned())));
        }
    }
    // Alice is sent nothing of her own.
    assert!(h.shard.participants[&a].tracks_out.iter().all(|t| t.source != a));
    // Nobody in the other room hears of alice, and d's media stays there.
    assert!(h.announced(d).is_empty());
    let d_audio = h.published(d, MediaKind::Audio);
    assert!(h.subscribers(d, d_audio).is_empty());
}

#[tokio::test]
async fn a_late_joiner_gets_what_the_others_already_publish() {
    let mut h = Harness::new().await;
    let call = Uuid::new_v4();
    let alice = Uuid::new_v4();
    let a = h.join(call, alice, true, &[MediaKind::Audio, MediaKind::Video]);
    let b = h.join_audio(call, Uuid::new_v4());
    let late = h.join_audio(call, Uuid::new_v4());

    let a_video = h.published(a, MediaKind::Video);
    assert_eq!(h.subscriber_ids(a, a_video), vec![b, late]);
    assert_eq!(h.announced_kinds(late, alice), vec!["audio", "video"]);
}

#[tokio::test]
async fn an_audio_only_participant_neither_gets_nor_sends_video() {
    let mut h = Harness::new().await;
    let call = Uuid::new_v4();
    let (alice, bob, carol) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // Bob is there before alice publishes; carol comes after.
    let b = h.join(call, bob, false, &[MediaKind::Audio, MediaKind::Video]);
    let a = h.join(call, alice, true, &[MediaKind::Audio, MediaKind::Video]);
    let c = h.join(call, carol, false, &[MediaKind::Audio]);

    let a_video = h.published(a, MediaKind::Video);
    assert!(h.subscribers(a, a_video).is_empty(), "alice's video goes to neither bob nor carol");
    let a_audio = h.published(a, MediaKind::Audio);
    assert_eq!(h.subscriber_ids(a, a_audio), vec![b, c]);
    for audio_only in [b, c] {
        assert_eq!(h.announced_kinds(audio_only, alice), vec!["audio"]);
        assert!(h.shard.participants[&audio_only].tracks_out.iter().all(|t| t.kind == MediaKind::Audio));
    }
    // Bob's own video m-line is not taken as published: alice gets only his audio.
    assert!(h.shard.participants[&b].tracks_in.iter().all(|t| t.kind == MediaKind::Audio));
    assert_eq!(h.announced_kinds(a, bob), vec!["audio"]);
}

#[tokio::test]
async fn a_frame_is_written_once_to_each_other_participant_of_the_room() {
    let (mut h, _, [(_, a), _, _]) = Harness::with_audio_users().await;
    let other_call = Uuid::new_v4();
    h.join_audio(other_call, Uuid::new_v4());
    let a_audio = h.published(a, MediaKind::Audio);
    assert_eq!(h.frames_forwarded(), 0);

    let frame = h.audio_frame(a, a_audio);
    let mut work = VecDeque::new();
    h.shard.forward(a, frame, &mut work);

    // b and c: not alice herself, not the participant of the other room.
    assert_eq!(h.frames_forwarded(), 2);
}

#[tokio::test]
async fn a_frame_on_a_mid_the_publisher_does_not_publish_goes_nowhere() {
    let (mut h, _, [(_, a), (_, b)]) = Harness::with_audio_users().await;
    // b's own published mid, but coming from a: a does not publish it.
    let b_audio = h.published(b, MediaKind::Audio);
    let a_audio = h.published(a, MediaKind::Audio);
    assert_ne!(a_audio, b_audio, "the test needs distinct mids");

    let frame = h.audio_frame(a, b_audio);
    h.shard.forward(a, frame, &mut VecDeque::new());

    assert_eq!(h.frames_forwarded(), 0);
}

#[tokio::test]
async fn a_subscriber_chooses_a_layer_by_its_own_mid() {
    let mut h = Harness::new().await;
    let call = Uuid::new_v4();
    let a = h.join_with(call, Uuid::new_v4(), true, &[MediaKind::Video], &["h", "m", "l"]);
    let b = h.join_audio(call, Uuid::new_v4());
    let a_video = h.published(a, MediaKind::Video);
    // The publisher's layers are kept as declared, best first, as `pick_layer` expects.
    let track = h.shard.participants[&a].tracks_in.iter().find(|t| t.mid == a_video).expect("the track");
    assert_eq!(track.layers, rids(&["h", "m", "l"]));
    let [(_, out_mid)] = h.subscribers(a, a_video)[..] else { panic!("one subscriber") };

    let wanted = |h: &Harness| {
        h.shard.participants[&b].tracks_out.iter().find_map(|t| t.open_mid_for(a, a_video).map(|_| t.wanted))
    };
    // A layer for a mid b does not have changes nothing.
    h.shard.handle(ShardInput::Layer { participant: b, mid: "99".into(), rid: "l".into() });
    assert_eq!(wanted(&h), Some(None));
    h.shard.handle(ShardInput::Layer { participant: b, mid: out_mid.to_string(), rid: "l".into() });
    assert_eq!(wanted(&h), Some(Some(Rid::from("l"))));
    // Nothing sent yet: the subscriber is to get what it asked for.
    assert_eq!(h.shard.layer_for(a, a_video, Some(Rid::from("l"))), Some(Rid::from("l")));
}

// Layer choice.

#[test]
fn a_subscriber_gets_the_layer_it_wants_or_the_nearest_one_sent() {
    let layers: Vec<Rid> = ["h", "m", "l"].into_iter().map(Rid::from).collect();
    let (h, m, l) = (layers[0], layers[1], layers[2]);
    let sent = |active: Vec<Rid>| move |rid: Rid| active.contains(&rid);
    let (all, no_high, only_high) = (vec![h, m, l], vec![m, l], vec![h]);
    assert_eq!(pick_layer(&layers, None, sent(all.clone())), Some(h));
    assert_eq!(pick_layer(&layers, Some(m), sent(all.clone())), Some(m));
    // The publisher dropped its best layer: the next one down, at once.
    assert_eq!(pick_layer(&layers, None, sent(no_high.clone())), Some(m));
    assert_eq!(pick_layer(&layers, Some(h), sent(no_high.clone())), Some(m));
    // Nothing lower is sent: the nearest higher one.
    assert_eq!(pick_layer(&layers, Some(l), sent(only_high.clone())), Some(h));
    // Nothing sent yet: what was asked for; an unknown layer means the best.
    assert_eq!(pick_layer(&layers, Some(l), sent(vec![])), Some(l));
    assert_eq!(pick_layer(&layers, Some(Rid::from("x")), sent(all.clone())), Some(h));
    assert_eq!(pick_layer(&[], Some(m), sent(all.clone())), None);
}

#[test]
fn when_the_wanted_layer_is_not_sent_a_lower_one_beats_a_higher_one() {
    let layers = rids(&["h", "m", "l"]);
    let (h, m, l) = (layers[0], layers[1], layers[2]);
    assert_eq!(pick_layer(&layers, Some(m), |rid| rid == h || rid == l), Some(l));
    assert_eq!(pick_layer(&layers, Some(l), |rid| rid == h || rid == m), Some(m), "the nearest higher one");
    assert_eq!(pick_layer(&layers, Some(h), |rid| rid == l), Some(l), "the nearest lower one, however far");
}

#[test]
fn a_layer_counts_as_sent_for_a_second_after_its_last_frame() {
    let now = Instant::now();
    let layers = rids(&["h", "m", "l"]);
    let (h, m) = (layers[0], layers[1]);
    let track = TrackIn {
        mid: Mid::from("0"),
        kind: MediaKind::Video,
        layers: layers.clone(),
        last_keyframe_request: HashMap::new(),
        last_seen: HashMap::from([(h, now - Duration::from_millis(1500)), (m, now - Duration::from_millis(500))]),
    };
    assert!(!track.is_sent(h, now));
    assert!(track.is_sent(m, now));
    assert_eq!(track.layer_for(Some(h), now), Some(m), "h went quiet");
    assert_eq!(track.layer_for(Some(h), now - Duration::from_millis(600)), Some(h), "h was sent then");
}

#[test]
fn without_simulcast_every_frame_is_forwarded() {
    let mut out = TrackOut::new(1, Mid::from("0"), MediaKind::Audio);
    assert_eq!(out.take_frame(&[], &[], None, false), (true, None));
    assert_eq!(out.current, None);
}

#[test]
fn a_subscriber_switches_layer_on_the_new_layers_keyframe_only() {
    let layers = rids(&["h", "m", "l"]);
    let (h, m, l) = (layers[0], layers[1], layers[2]);
    let mut out = TrackOut::new(1, Mid::from("0"), MediaKind::Video);

    // Nothing forwarded yet; the target is the best layer: its delta frames wait for a keyframe.
    assert_eq!(out.take_frame(&layers, &layers, Some(h), false), (false, Some(h)));
    assert_eq!(out.take_frame(&layers, &layers, Some(l), true), (false, Some(h)), "another layer's keyframe");
    assert_eq!(out.take_frame(&layers, &layers, Some(h), true), (true, None));
    assert_eq!(out.current, Some(h));
    assert_eq!(out.take_frame(&layers, &layers, Some(h), false), (true, None));
    assert_eq!(out.take_frame(&layers, &layers, Some(m), false), (false, None), "not its layer");

    // It asks for l: h keeps flowing until l's keyframe.
    out.wanted = Some(l);
    assert_eq!(out.take_frame(&layers, &layers, Some(h), false), (true, Some(l)));
    assert_eq!(out.take_frame(&layers, &layers, Some(l), false), (false, Some(l)));
    assert_eq!(out.take_frame(&layers, &layers, Some(l), true), (true, None));
    assert_eq!(out.current, Some(l));
    assert_eq!(out.take_frame(&layers, &layers, Some(h), true), (false, None));
}

#[test]
fn a_subscriber_moves_down_when_the_publisher_stops_sending_its_layer() {
    let layers = rids(&["h", "m", "l"]);
    let (h, m) = (layers[0], layers[1]);
    let mut out = TrackOut::new(1, Mid::from("0"), MediaKind::Video);
    assert_eq!(out.take_frame(&layers, &layers, Some(h), true), (true, None));

    // h is no longer sent: m is the target, taken on its keyframe.
    let without_h = vec![m, layers[2]];
    assert_eq!(out.take_frame(&layers, &without_h, Some(m), false), (false, Some(m)));
    assert_eq!(out.take_frame(&layers, &without_h, Some(m), true), (true, None));
    assert_eq!(out.current, Some(m));
}

// A join whose signaling socket is gone by the time the shard answers (`answered.send` fails).

/// Joins `user_id` to `call_id` as if its signaling task had dropped the answer's receiver.
fn join_without_a_socket(h: &mut Harness, call_id: Uuid, user_id: Uuid) -> ParticipantId {
    let mut rtc = Rtc::builder().build(Instant::now());
    let (offer, _, _) = client_offer(&mut rtc, &[MediaKind::Audio], &[]);
    // The signaling socket stays open while the shard handles the join; only the answer's
    // receiver is gone.
    let (request, _signals, answer) = h.join_request(call_id, user_id, true, offer.to_sdp_string());
    drop(answer);
    let id = request.participant;
    h.shard.handle(ShardInput::Join(request));
    id
}

#[tokio::test]
async fn a_join_whose_socket_went_away_joins_nobody() {
    let mut h = Harness::new().await;
    let call = Uuid::new_v4();
    join_without_a_socket(&mut h, call, Uuid::new_v4());
    assert_eq!(h.room(call), None);
    assert!(h.shard.participants.is_empty());
}

#[tokio::test]
async fn a_join_whose_socket_went_away_leaves_no_route_behind() {
    let mut h = Harness::new().await;
    join_without_a_socket(&mut h, Uuid::new_v4(), Uuid::new_v4());
    let routes = h.routes();
    let routed = routes.iter().filter_map(|r| if let RouteUpdate::Ufrag(u, _) = r { Some(u) } else { None });
    let forgotten: Vec<&String> =
        routes.iter().filter_map(|r| if let RouteUpdate::ForgetUfrag(u) = r { Some(u) } else { None }).collect();
    let kept: Vec<&String> = routed.filter(|u| !forgotten.contains(u)).collect();
    assert!(kept.is_empty(), "the router keeps {kept:?}");
    assert!(h.shard.by_ufrag.is_empty(), "by_ufrag keeps {:?}", h.shard.by_ufrag);
}

#[tokio::test]
async fn a_reconnect_whose_socket_went_away_does_not_lose_the_user_silently() {
    let (mut h, call, [(alice, first), _]) = Harness::with_audio_users().await;

    let second = join_without_a_socket(&mut h, call, alice);
    // Signaling says the new connection is gone; the shard never had it.
    h.leave(second, false);
    h.check_liveness_after_the_grace();

    let still_there = h.shard.participants.contains_key(&first);
    let reported = h.reports().iter().any(|r| is_left(r, call, alice));
    assert!(still_there || reported, "alice is gone from the room and the api was never told");
}
