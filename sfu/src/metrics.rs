//! Prometheus metrics (OpenTelemetry instruments, Prometheus exposition at `/metrics`).

use opentelemetry::metrics::{Counter, UpDownCounter};
use parley_runtime::metrics::Prometheus;

pub struct SfuMetrics {
    prometheus: Prometheus,
    pub rooms: UpDownCounter<i64>,
    pub participants: UpDownCounter<i64>,
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
            keyframe_requests: counter("sfu_keyframe_requests", "keyframe requests (PLI/FIR) sent to publishers"),
            nacks: counter("sfu_nacks", "NACKs received from subscribers (answered by retransmission)"),
            prometheus,
        })
    }

    pub(crate) fn frame_forwarded(&self, bytes: usize) {
        self.forwarded_frames.add(1, &[]);
        self.forwarded_bytes.add(bytes as u64, &[]);
    }

    pub(crate) fn udp_out(&self, bytes: usize) {
        self.udp_packets_out.add(1, &[]);
        self.udp_bytes_out.add(bytes as u64, &[]);
    }

    pub(crate) fn udp_in(&self, bytes: usize) {
        self.udp_packets_in.add(1, &[]);
        self.udp_bytes_in.add(bytes as u64, &[]);
    }

    pub(crate) fn render(&self) -> String {
        self.prometheus.render()
    }
}
