// A call participant for Parley's SFU tests in headless Chromium (Debian's, driven by
// playwright-core): its fake camera (optionally as three simulcast layers) and fake microphone go
// to the SFU; it answers the SFU's offers. Prints one JSON line: what it sent per layer and what
// it decoded, from getStats.
//
//   node chromium_peer.cjs URL TOKEN SECONDS [--simulcast]
const { chromium } = require('playwright-core');

async function main() {
  const [url, token, seconds, ...flags] = process.argv.slice(2);
  const simulcast = flags.includes('--simulcast');
  const browser = await chromium.launch({
    executablePath: process.env.PARLEY_TEST_CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  try {
    const page = await browser.newPage();
    // A page on the SFU's own http origin: 127.0.0.1 is a secure context, so getUserMedia works.
    await page.goto(url.replace(/^ws/, 'http').replace(/\/rtc$/, '/healthz'));
    const summary = await page.evaluate(async ({ url, token, seconds, simulcast }) => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
      const pc = new RTCPeerConnection();
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendrecv' });
      const video = { direction: 'sendrecv', streams: [stream] };
      if (simulcast) {
        video.sendEncodings = [
          { rid: 'h', maxBitrate: 1500000 },
          { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500000 },
          { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150000 },
        ];
      }
      pc.addTransceiver(stream.getVideoTracks()[0], video);
      const ws = new WebSocket(`${url}?token=${token}`);
      const result = { errors: [], answered: false };
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
      ws.onmessage = async (event) => {
        const message = JSON.parse(event.data);
        if (message.type === 'participants') result.participants = message.participants;
        try {
          if (message.type === 'answer') {
            await pc.setRemoteDescription(message);
            result.answered = true;
          } else if (message.type === 'offer') {
            await pc.setRemoteDescription(message);
            await pc.setLocalDescription(await pc.createAnswer());
            ws.send(JSON.stringify({ type: 'answer', sdp: pc.localDescription.sdp }));
          } else if (message.type === 'error') {
            result.errors.push(message);
          }
        } catch (error) {
          result.errors.push(String(error));
        }
      };
      await pc.setLocalDescription(await pc.createOffer());
      ws.send(JSON.stringify({ type: 'offer', sdp: pc.localDescription.sdp }));
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      result.sent = [];
      result.received = [];
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          result.sent.push({ rid: s.rid || null, width: s.frameWidth || 0, frames: s.framesEncoded || 0 });
        } else if (s.type === 'inbound-rtp') {
          result.received.push({
            kind: s.kind,
            frames: s.framesDecoded || 0,
            packets: s.packetsReceived || 0,
            nacks: s.nackCount || 0,
            retransmitted: s.retransmittedPacketsReceived || 0,
            lost: s.packetsLost || 0,
          });
        }
      });
      ws.send(JSON.stringify({ type: 'leave' }));
      pc.close();
      return result;
    }, { url, token, seconds: Number(seconds), simulcast });
    console.log(JSON.stringify(summary));
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.log(JSON.stringify({ fatal: String(error) }));
  process.exit(1);
});
