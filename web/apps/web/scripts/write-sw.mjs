// After `next build`: fills in the service worker's list of the app shell (every file of the
// export but source maps and the worker itself; pages by their URL) and a version derived from
// their contents, so each build that changes anything is a new worker with a fresh cache.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const BASE = '/app/';
const out = fileURLToPath(new URL('../out', import.meta.url));
const worker = join(out, 'sw.js');

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** The URL a file is fetched by: a page's `index.html` by its directory. */
function urlOf(path) {
  const rel = relative(out, path).split(sep).join('/');
  if (rel === 'index.html') return BASE;
  if (rel.endsWith('/index.html')) return `${BASE}${rel.slice(0, -'index.html'.length)}`;
  return `${BASE}${rel}`;
}

const shell = files(out)
  .filter((path) => !/\.(gz|map|txt)$/.test(path) && path !== worker && !path.endsWith('404.html'))
  .sort();
const version = createHash('sha256');
for (const path of shell) version.update(urlOf(path)).update(readFileSync(path));

const template = readFileSync(worker, 'utf8');
for (const placeholder of ["const VERSION = 'development';", 'const SHELL = [];']) {
  if (!template.includes(placeholder)) throw new Error(`write-sw: sw.js lacks ${placeholder}`);
}
const filled = template
  .replace(
    "const VERSION = 'development';",
    `const VERSION = '${version.digest('hex').slice(0, 16)}';`,
  )
  .replace('const SHELL = [];', `const SHELL = ${JSON.stringify(shell.map(urlOf))};`);
writeFileSync(worker, filled);
console.log(`write-sw: ${shell.length} files in the app shell`);
