// Draws the app's install icons (public/icons/icon-{192,512}.png): the favicon's speech bubble,
// white on the accent green, inside the safe zone of a maskable icon (the middle 80 %). Plain
// Node (zlib), no image library; run it after changing the design and commit the PNGs:
//   node scripts/make-icons.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const GREEN = [0x0b, 0x6e, 0x4f];
const WHITE = [0xff, 0xff, 0xff];
/** Samples per pixel side, for smooth edges. */
const SUPERSAMPLE = 4;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

function png(size, pixel) {
  const raw = Buffer.alloc(size * (size * 3 + 1));
  for (let y = 0; y < size; y += 1) {
    const row = y * (size * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < size; x += 1) {
      const [r, g, b] = pixel(x, y);
      raw.set([r, g, b], row + 1 + x * 3);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

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
  return png(size, (x, y) => {
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
