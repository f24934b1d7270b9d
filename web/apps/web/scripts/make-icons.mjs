// Draws the app's install icons (public/icons/icon-{192,512}.png): the favicon's speech bubble,
// white on the accent green, inside the safe zone of a maskable icon (the middle 80 %). Plain
// Node, no image library; run it after changing the design and commit the PNGs:
//   node scripts/make-icons.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
// The tests' PNG encoder (a dev-time script: nothing of the e2e package ships with the app).
import { encodePng } from '../../../e2e/lib/files.mjs';

const GREEN = [0x0b, 0x6e, 0x4f];
const WHITE = [0xff, 0xff, 0xff];
/** Samples per pixel side, for smooth edges. */
const SUPERSAMPLE = 4;

/** Whether (u, v), in units of the favicon's 32×32 grid, is on the bubble. */
function inBubble(u, v) {
  // The body: x 6–26, y 9–22 with corners of radius 2.
  const [left, right, top, bottom, radius] = [6, 26, 9, 22, 2];
  if (u >= left && u <= right && v >= top && v <= bottom) {
    const cx = Math.min(Math.max(u, left + radius), right - radius);
    const cy = Math.min(Math.max(v, top + radius), bottom - radius);
    return (u - cx) ** 2 + (v - cy) ** 2 <= radius ** 2;
  }
  // The tail: the triangle (9, 22), (14, 22), (9, 26).
  return v >= 22 && v <= 26 && u >= 9 && u <= 14 - ((v - 22) * 5) / 4;
}

function icon(size) {
  // The bubble's 32-unit grid fills the middle 70 % of the icon (a maskable icon's safe zone is
  // the middle 80 %), centred.
  const unit = (size * 0.7) / 32;
  const offset = (size - 32 * unit) / 2;
  return encodePng(size, size, (x, y) => {
    let covered = 0;
    for (let sy = 0; sy < SUPERSAMPLE; sy += 1) {
      for (let sx = 0; sx < SUPERSAMPLE; sx += 1) {
        const u = (x + (sx + 0.5) / SUPERSAMPLE - offset) / unit;
        const v = (y + (sy + 0.5) / SUPERSAMPLE - offset) / unit;
        if (inBubble(u, v)) covered += 1;
      }
    }
    const share = covered / SUPERSAMPLE ** 2;
    return GREEN.map((channel, i) => Math.round(channel + (WHITE[i] - channel) * share));
  });
}

const dir = fileURLToPath(new URL('../public/icons/', import.meta.url));
mkdirSync(dir, { recursive: true });
for (const size of [192, 512]) {
  writeFileSync(`${dir}icon-${size}.png`, icon(size));
  console.log(`wrote public/icons/icon-${size}.png`);
}
