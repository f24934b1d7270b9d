// The api serves this export with `script-src 'self' 'wasm-unsafe-eval'` (no 'unsafe-inline'):
// every executable script must come from a file. Scans out/**/*.html and fails on any <script>
// without `src` whose type is not application/json (Next's __NEXT_DATA__ is JSON, never run),
// on inline event handlers (onclick=…), which the policy blocks too, and (`style-src 'self'`) on
// style attributes and <style> elements.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../out', import.meta.url));

function htmlFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return htmlFiles(path);
    return name.endsWith('.html') ? [path] : [];
  });
}

function attribute(tag, name) {
  const match = tag.match(new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return match ? (match[1] ?? match[2] ?? match[3] ?? '') : null;
}

let files;
try {
  files = htmlFiles(root);
} catch {
  console.error(`check-csp: ${root} does not exist; run the build first`);
  process.exit(1);
}
if (files.length === 0) {
  console.error('check-csp: no HTML files in out/');
  process.exit(1);
}

const problems = [];
let scripts = 0;
for (const file of files) {
  const html = readFileSync(file, 'utf8');
  const name = relative(root, file);
  for (const [tag] of html.matchAll(/<script\b[^>]*>/gi)) {
    scripts += 1;
    const src = attribute(tag, 'src');
    const type = (attribute(tag, 'type') ?? '').trim().toLowerCase();
    if (src === null && type !== 'application/json') {
      problems.push(`${name}: inline executable script ${tag}`);
    }
  }
  for (const [handler] of html.matchAll(/<[a-z][^>]*\son[a-z]+\s*=/gi)) {
    problems.push(`${name}: inline event handler in ${handler}`);
  }
  // `style-src 'self'` blocks inline styles too: style attributes and <style> elements in the
  // HTML (React setting styles after hydration, through the DOM, is allowed).
  for (const [tag] of html.matchAll(/<[a-z][^>]*\sstyle\s*=[^>]*>/gi)) {
    problems.push(`${name}: inline style attribute in ${tag.slice(0, 120)}`);
  }
  for (const [tag] of html.matchAll(/<style\b[^>]*>/gi)) {
    problems.push(`${name}: inline <style> element ${tag}`);
  }
  if (/href\s*=\s*["']?\s*javascript:/i.test(html)) {
    problems.push(`${name}: javascript: URL`);
  }
}

if (problems.length > 0) {
  console.error(problems.join('\n'));
  console.error(`check-csp: ${problems.length} problem(s) in ${files.length} HTML files`);
  process.exit(1);
}
console.log(
  `check-csp: ${files.length} HTML files, ${scripts} script tags, no inline executable scripts or styles`,
);
