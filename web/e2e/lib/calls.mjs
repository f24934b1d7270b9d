// Calls in the browser as the tests see them: every RTCPeerConnection a page makes is kept (an
// init script) so getStats can be read; remote video is read off the call screen's <video>
// elements (decoded frames, requestVideoFrameCallback); the SFU's test-only fault endpoint cuts a
// user's UDP.
import { check, WAIT_MS } from './browser.mjs';
import { until, visible } from './app.mjs';

/** Keeps every RTCPeerConnection of the context's pages in `window.__parleyPeers`. */
export async function instrumentCalls(context) {
  await context.addInitScript(() => {
    const Original = window.RTCPeerConnection;
    if (!Original) return;
    window.__parleyPeers = [];
    window.RTCPeerConnection = class extends Original {
      constructor(...args) {
        super(...args);
        window.__parleyPeers.push(this);
      }
    };
  });
}

/**
 * What the page's open peer connections received and sent: audio packets in, video frames
 * decoded, video frames encoded (per simulcast layer), from getStats.
 */
export function mediaStats(page) {
  return page.evaluate(async () => {
    const totals = {
      audioPacketsIn: 0,
      videoFramesDecoded: 0,
      videoIn: 0,
      layersSent: {},
      peers: 0,
    };
    for (const pc of window.__parleyPeers ?? []) {
      if (pc.connectionState === 'closed') continue;
      totals.peers += 1;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio')
          totals.audioPacketsIn += s.packetsReceived || 0;
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          totals.videoIn += 1;
          totals.videoFramesDecoded += s.framesDecoded || 0;
        }
        if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid) {
          totals.layersSent[s.rid] = (totals.layersSent[s.rid] || 0) + (s.framesEncoded || 0);
        }
      });
    }
    return totals;
  });
}

/** Frames shown so far by each visible remote video tile, by user id. */
export function tileFrames(page) {
  return page.evaluate(() => {
    const frames = {};
    for (const tile of document.querySelectorAll('li.tile[data-user-id]')) {
      const video = tile.querySelector('video.tile__video:not(.tile__video--hidden)');
      frames[tile.dataset.userId] = video ? video.getVideoPlaybackQuality().totalVideoFrames : -1;
    }
    return frames;
  });
}

/** Waits until every one of `userIds` has a tile on `page` showing decoded video frames. */
export async function seesVideoOf(page, userIds, timeout = WAIT_MS) {
  let last;
  await until(
    `video from ${userIds.length} participant(s)`,
    async () => {
      last = await tileFrames(page);
      return userIds.every((id) => (last[id] ?? 0) > 0);
    },
    timeout,
  ).catch((error) => {
    throw new Error(`${error.message}; tiles: ${JSON.stringify(last)}`);
  });
  return last;
}

/** Waits until the page's peer connections have received audio packets. */
export async function hearsAudio(page) {
  return until('audio packets', async () => {
    const stats = await mediaStats(page);
    return stats.audioPacketsIn > 20 ? stats : null;
  });
}

/** The call screen's status line ("Ringing…", "Reconnecting…", "Call ended", a timer). */
export function callStatus(page) {
  return page.evaluate(() => document.querySelector('.call__status')?.textContent ?? null);
}

/** Waits until the call screen's status reads `text` (failing with what it read instead). */
export async function callStatusIs(page, text, timeout = WAIT_MS) {
  const seen = [];
  await until(
    `the call status "${text}"`,
    async () => {
      const status = await page.evaluate(
        () =>
          document.querySelector('.call__status')?.textContent ??
          document.querySelector('main')?.textContent ??
          null,
      );
      if (seen[seen.length - 1] !== status) seen.push(status);
      return status === text;
    },
    timeout,
  ).catch((error) => {
    throw new Error(`${error.message}; the screen said: ${JSON.stringify(seen)}`);
  });
}

/** The incoming-call alert. */
export function incomingCall(page) {
  return page.getByRole('alertdialog');
}

export function callControls(page) {
  return page.getByRole('group', { name: 'Call controls' });
}

/** Starts a call from the open chat's header. */
export async function startCall(page, kind, title) {
  const name = kind === 'video' ? `Video call with ${title}` : `Voice call with ${title}`;
  await page.getByRole('button', { name }).click();
  await page.waitForURL(/\/app\/call\/$/, { timeout: WAIT_MS });
}

export async function answer(page) {
  const alert = incomingCall(page);
  await visible(alert);
  await alert.getByRole('button', { name: 'Accept' }).click();
  await page.waitForURL(/\/app\/call\/$/, { timeout: WAIT_MS });
}

export async function hangUp(page) {
  await callControls(page).getByRole('button', { name: 'Hang up' }).click();
}

/** Cuts `userId`'s UDP at the SFU for `ms` (the SFU runs with PARLEY_SFU_TEST_FAULTS=1). */
export async function blackhole(sfuBase, userId, ms) {
  const response = await fetch(`${sfuBase}/test/blackhole`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId, ms }),
  });
  check(response.status === 204, `blackhole: HTTP ${response.status}`);
}

/** Every `[name, locator]` is at least 44×44 CSS pixels: a finger can hit it. */
export async function touchSized(named) {
  for (const [name, locator] of named) {
    const box = await locator.boundingBox();
    check(
      box && box.width >= 44 && box.height >= 44,
      `${name} is too small to touch: ${JSON.stringify(box)}`,
    );
  }
}
