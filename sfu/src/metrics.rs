//! Prometheus metrics (OpenTelemetry instruments, Prometheus exposition at `/metrics`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use opentelemetry::metrics::{Counter, UpDownCounter};
use parley_runtime::metrics::Prometheus;

pub struct SfuMetrics {
    prometheus: Prometheus,
    rooms: UpDownCounter<i64>,
    participants: UpDownCounter<i64>,
    /// The same as `rooms` and `participants`, and every datagram in or out: this node's load as
    /// it reports it to the SFU directory (`registry`).
    rooms_now: AtomicI64,
    participants_now: AtomicI64,
    packets: AtomicU64,
    forwarded_frames: Counter<u64>,
    forwarded_bytes: Counter<u64>,
    udp_packets_out: Counter<u64>,
    udp_bytes_out: Counter<u64>,
    udp_packets_in: Counter<u64>,
    udp_bytes_in: Counter<u64>,
    pub keyframe_requests: Counter<u64>,
    pub nacks: Counter<u64>,
}

impl SfuMetrics {
    pub fn new() -> anyhow::Result<Self> {
        let prometheus = Prometheus::new()?;
        let meter = prometheus.meter("parley-sfu");
        let counter = |name: &'static str, description: &'static str| {
            meter.u64_counter(name).with_description(description).build()
        };
        Ok(Self {
            rooms: meter.i64_up_down_counter("sfu_rooms").with_description("rooms with participants").build(),
            participants: meter
                .i64_up_down_counter("sfu_participants")
                .with_description("participants connected")
                .build(),
            forwarded_frames: counter("sfu_forwarded_frames", "media frames forwarded to a subscriber"),
            forwarded_bytes: counter("sfu_forwarded_bytes", "media payload bytes forwarded to subscribers"),
            udp_packets_out: counter("sfu_udp_packets_sent", "UDP datagrams sent (RTP, RTCP, STUN, DTLS)"),
            udp_bytes_out: counter("sfu_udp_bytes_sent", "UDP bytes sent"),
            udp_packets_in: counter("sfu_udp_packets_received", "UDP datagrams received"),
            udp_bytes_in: counter("sfu_udp_bytes_received", "UDP bytes received"),
            rooms_now: AtomicI64::new(0),
            participants_now: AtomicI64::new(0),
            packets: AtomicU64::new(0),
            keyframe_requests: counter("sfu_keyframe_requests", "keyframe requests (PLI/FIR) sent to publishers"),
            nacks: counter("sfu_nacks", "NACKs received from subscribers (answered by retransmission)"),
            prometheus,
        })
    }

    pub(crate) fn frame_forwarded(&self, bytes: usize) {
        self.forwarded_frames.add(1, &[]);
        self.forwarded_bytes.add(bytes as u64, &[]);
    }

    pub(crate) fn rooms_changed(&self, by: i64) {
        self.rooms.add(by, &[]);
        self.rooms_now.fetch_add(by, Ordering::Relaxed);
    }

    pub(crate) fn participants_changed(&self, by: i64) {
        self.participants.add(by, &[]);
        self.participants_now.fetch_add(by, Ordering::Relaxed);
    }

    /// (rooms, participants) now.
    pub(crate) fn load(&self) -> (u64, u64) {
        let now = |gauge: &AtomicI64| u64::try_from(gauge.load(Ordering::Relaxed)).unwrap_or(0);
        (now(&self.rooms_now), now(&self.participants_now))
    }

    /// Datagrams in and out since the start.
    pub(crate) fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    pub(crate) fn udp_out(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.udp_packets_out.add(1, &[]);
        self.udp_bytes_out.add(bytes as u64, &[]);
    }

    pub(crate) fn udp_in(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.udp_packets_in.add(1, &[]);
        self.udp_bytes_in.add(bytes as u64, &[]);
    }

    pub(crate) fn render(&self) -> String {
        self.prometheus.render()
    }
}
