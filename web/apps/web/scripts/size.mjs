// Gzip size (level 9) of the JavaScript a page of the export loads: every
// <script src="/app/_next/static/…js"> in its HTML. `noModule` polyfills (never loaded by
// browsers with ES modules) are counted separately.
//   node scripts/size.mjs [page]   (default: chat)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const out = fileURLToPath(new URL('../out/', import.meta.url));
const page = process.argv[2] ?? 'chat';
const html = readFileSync(`${out}${page === 'index' ? '' : `${page}/`}index.html`, 'utf8');

let modern = 0;
let legacy = 0;
for (const [tag] of html.matchAll(/<script\b[^>]*>/gi)) {
  const src = tag.match(/\ssrc="\/app\/(_next\/static\/[^"]+\.js)"/)?.[1];
  if (!src) continue;
  const bytes = readFileSync(out + src);
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  const noModule = /\snomodule/i.test(tag);
  if (noModule) legacy += gzipped;
  else modern += gzipped;
  console.log(
    `${(gzipped / 1024).toFixed(1).padStart(7)} KiB  ${src}${noModule ? '  (noModule)' : ''}`,
  );
}
console.log(`${(modern / 1024).toFixed(1).padStart(7)} KiB  total for /${page}/ (gzip -9)`);
if (legacy)
  console.log(
    `${(legacy / 1024).toFixed(1).padStart(7)} KiB  noModule polyfills, old browsers only`,
  );
