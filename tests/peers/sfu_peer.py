"""A call participant for Parley's SFU tests, built on aiortc (an independent WebRTC stack).

It joins the SFU's room with a join token, sends a generated video (moving pattern) and an audio
tone, answers the SFU's offers, decodes what it receives, and prints one JSON summary on stdout:
frames decoded per received track (by mid), when the first arrived, the last `participants`
frame, errors and the close reason. Usage:

    sfu_peer.py URL TOKEN [--seconds N] [--audio-only] [--call-id ID] [--sdp-garbage]
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
    args = parser.parse_args()

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
        entry = {"kind": track.kind, "frames": 0, "first_at": None, "mid": mid}
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
                if entry["first_at"] is None:
                    entry["first_at"] = round(time.time() - started, 3)
                    if track.kind == "video":
                        entry["size"] = [frame.width, frame.height]
                entry["frames"] += 1

        consumers.append(asyncio.ensure_future(consume()))

    async with websockets.connect(url) as ws:
        if args.sdp_garbage:
            await ws.send(json.dumps({"type": "offer", "sdp": "v=0\r\nthis is not sdp\r\n"}))
        else:
            await pc.setLocalDescription(await pc.createOffer())
            await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
        deadline = time.time() + args.seconds
        try:
            while time.time() < deadline:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=max(0.05, deadline - time.time()))
                except asyncio.TimeoutError:
                    break
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "answer":
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
                    summary["answered"] = True
                elif kind == "offer":
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
                    await pc.setLocalDescription(await pc.createAnswer())
                    await ws.send(json.dumps({"type": "answer", "sdp": pc.localDescription.sdp}))
                elif kind == "participants":
                    summary["participants"] = message["participants"]
                    summary["participants_at"] = round(time.time() - started, 3)
                elif kind == "error":
                    summary["errors"].append(message)
        except websockets.ConnectionClosed as closed:
            summary["close"] = {"code": closed.rcvd.code if closed.rcvd else None,
                                "reason": closed.rcvd.reason if closed.rcvd else None}
        if summary["close"] is None and ws.close_code is not None:
            summary["close"] = {"code": ws.close_code, "reason": ws.close_reason}
        if summary["close"] is None:
            await ws.send(json.dumps({"type": "leave"}))
    for consumer in consumers:
        consumer.cancel()
    await pc.close()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
