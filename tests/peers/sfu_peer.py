"""A call participant for Parley's SFU tests, built on aiortc (an independent WebRTC stack).

It joins the SFU's room with a join token, sends a generated video (moving pattern) and an audio
tone, answers the SFU's offers, decodes what it receives, and prints one JSON summary on stdout:
frames decoded per received track (by mid), when the first arrived, the last `participants`
frame, errors and the close reason. Usage:

    sfu_peer.py URL TOKEN [--seconds N] [--delay N] [--freeze-after N] [--audio-only]
                          [--call-id ID] [--sdp-garbage] [--layer RID] [--offer-padding BYTES]
                          [--no-leave]

`--freeze-after N` stops all media and ICE after N seconds but keeps the signaling socket open
(a peer that vanished from the network without saying `leave`). `--offer-padding N` adds N bytes
of padding (an unknown field) to the offer frame. `--no-leave` closes the socket at the end
without saying `leave` (a connection that dropped). `closed_at_unix` is the wall-clock time
(`time.time()`) at which the SFU closed the socket, for measuring how fast a drop happens.
"""

import argparse
import asyncio
import fractions
import json
import math
import sys
import time

import av
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AUDIO_PTIME, VIDEO_CLOCK_RATE, VIDEO_PTIME, VIDEO_TIME_BASE

WIDTH, HEIGHT = 320, 240


class PatternVideo(MediaStreamTrack):
    """Frames of a moving luminance gradient, so every frame differs."""

    kind = "video"

    def __init__(self):
        super().__init__()
        self.count = 0
        self.started = None

    async def recv(self):
        if self.started is None:
            self.started = time.time()
        self.count += 1
        wait = self.started + self.count * VIDEO_PTIME - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        shift = self.count * 4
        row = bytes((x + shift) % 256 for x in range(WIDTH))
        frame.planes[0].update(row * HEIGHT)
        frame.planes[1].update(bytes([128]) * (WIDTH // 2 * HEIGHT // 2))
        frame.planes[2].update(bytes([128]) * (WIDTH // 2 * HEIGHT // 2))
        frame.pts = int(self.count * VIDEO_PTIME * VIDEO_CLOCK_RATE)
        frame.time_base = VIDEO_TIME_BASE
        return frame


class ToneAudio(MediaStreamTrack):
    """A 440 Hz tone, 20 ms frames of 48 kHz mono s16."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        self.samples = 0
        self.started = None

    async def recv(self):
        rate, per_frame = 48000, int(48000 * AUDIO_PTIME)
        if self.started is None:
            self.started = time.time()
        wait = self.started + self.samples / rate - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=per_frame)
        pcm = bytearray()
        for n in range(per_frame):
            value = int(8000 * math.sin(2 * math.pi * 440 * (self.samples + n) / rate))
            pcm += value.to_bytes(2, "little", signed=True)
        frame.planes[0].update(bytes(pcm))
        frame.pts = self.samples
        frame.sample_rate = rate
        frame.time_base = fractions.Fraction(1, rate)
        self.samples += per_frame
        return frame


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--audio-only", action="store_true")
    parser.add_argument("--call-id")
    parser.add_argument("--sdp-garbage", action="store_true", help="send a malformed offer")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--freeze-after", type=float)
    parser.add_argument("--layer", help="ask for this simulcast layer of every video received")
    parser.add_argument("--offer-padding", type=int, default=0, help="pad the offer frame with N bytes")
    parser.add_argument("--no-leave", action="store_true", help="close the socket without saying leave")
    args = parser.parse_args()
    await asyncio.sleep(args.delay)

    started = time.time()
    summary = {"received": {}, "participants": None, "errors": [], "close": None, "answered": False}
    url = f"{args.url}?token={args.token}" + (f"&call_id={args.call_id}" if args.call_id else "")
    pc = RTCPeerConnection()
    pc.addTrack(ToneAudio())
    if not args.audio_only:
        pc.addTrack(PatternVideo())

    consumers = []

    @pc.on("track")
    def on_track(track):
        mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
        entry = {"kind": track.kind, "frames": 0, "first_at": None, "mid": mid, "largest_gap": 0.0}
        key = f"{track.kind}:{id(track)}"
        summary["received"][key] = entry

        async def consume():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                if entry["mid"] is None:
                    entry["mid"] = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
                now = time.time() - started
                if entry["first_at"] is not None:
                    # The longest the track went without a frame: a stall shows here.
                    entry["largest_gap"] = max(entry["largest_gap"], round(now - entry["last_at"], 3))
                entry["last_at"] = now
                if entry["first_at"] is None:
                    entry["first_at"] = round(now, 3)
                    if track.kind == "video":
                        entry["size"] = [frame.width, frame.height]
                if track.kind == "video":
                    entry["last_size"] = [frame.width, frame.height]
                entry["frames"] += 1

        consumers.append(asyncio.ensure_future(consume()))

    def closed_by(closed):
        summary["closed_at_unix"] = time.time()
        summary["close"] = {"code": closed.rcvd.code if closed.rcvd else None,
                            "reason": closed.rcvd.reason if closed.rcvd else None}

    async with websockets.connect(url) as ws:
        try:
            await converse(ws, pc, args, started, summary)
        except websockets.ConnectionClosed as closed:
            closed_by(closed)
        if summary["close"] is None and ws.close_code is not None:
            summary["close"] = {"code": ws.close_code, "reason": ws.close_reason}
        if summary["close"] is None and not args.no_leave:
            try:
                await ws.send(json.dumps({"type": "leave"}))
            except websockets.ConnectionClosed as closed:
                # The SFU closed the socket (say, the call ended as the other side left) just as
                # our time was up: reported like any other close.
                closed_by(closed)
    for consumer in consumers:
        consumer.cancel()
    await pc.close()
    print(json.dumps(summary), flush=True)


async def converse(ws, pc, args, started, summary):
    """Offers, then follows the SFU's frames until `--seconds` are up (or the socket closes)."""
    if args.sdp_garbage:
        offer = "v=0\r\nthis is not sdp\r\n"
    else:
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
    frame = {"type": "offer", "sdp": offer}
    if args.offer_padding:
        frame["padding"] = "x" * args.offer_padding
    try:
        await ws.send(json.dumps(frame))
    except websockets.ConnectionClosed:
        pass  # Refused at once: the frames it sent first are still read below.
    deadline = time.time() + args.seconds
    freeze_at = time.time() + args.freeze_after if args.freeze_after is not None else None
    while time.time() < deadline:
        if freeze_at is not None and time.time() >= freeze_at:
            freeze_at = None
            await pc.close()
            summary["frozen_at"] = round(time.time() - started, 3)
        until = min(deadline, freeze_at) if freeze_at is not None else deadline
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=max(0.05, until - time.time()))
        except asyncio.TimeoutError:
            continue
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "answer":
            await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
            summary["answered"] = True
        elif kind == "offer" and "frozen_at" not in summary:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await ws.send(json.dumps({"type": "answer", "sdp": pc.localDescription.sdp}))
        elif kind == "participants":
            if args.layer:
                for participant in message["participants"]:
                    for track in participant["tracks"]:
                        if track["kind"] == "video":
                            await ws.send(json.dumps({"type": "layer", "mid": track["mid"], "rid": args.layer}))
            summary["participants"] = message["participants"]
            summary["participants_at"] = round(time.time() - started, 3)
            summary.setdefault("participant_counts", []).append(len(message["participants"]))
            summary.setdefault("rooms", []).append({
                "at": summary["participants_at"],
                "users": sorted(p["user_id"] for p in message["participants"]),
            })
            peak = summary.get("participants_peak") or []
            if len(message["participants"]) >= len(peak):
                summary["participants_peak"] = message["participants"]
        elif kind == "error":
            summary["errors"].append(message)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
