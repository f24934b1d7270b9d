// Serves the static export the way the api will: under /app/, same origin as the API, with the
// Content-Security-Policy header; everything else (the API and the /ws upgrade) is passed to a
// running api. For trying the app before the api serves it itself.
//   PARLEY_API=http://127.0.0.1:8080 PORT=3000 node scripts/serve.mjs
import { createReadStream, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = fileURLToPath(new URL('../out', import.meta.url));
const api = new URL(process.env.PARLEY_API ?? 'http://127.0.0.1:8080');
const port = Number(process.env.PORT ?? 3000);

// The api's policy for the app (script-src as agreed); the rest is as strict as the app allows.
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

function serveStatic(req, res) {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path === '/app') {
    res.writeHead(308, { Location: '/app/' }).end();
    return;
  }
  let file = normalize(join(out, path.slice('/app'.length)));
  if (!file.startsWith(out)) {
    res.writeHead(400).end();
    return;
  }
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
  const found = existsSync(file);
  if (!found) file = join(out, '404.html');
  res.writeHead(found ? 200 : 404, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': path.startsWith('/app/_next/static/')
      ? 'public, max-age=31536000, immutable'
      : 'no-cache',
  });
  createReadStream(file).pipe(res);
}

function proxy(req, res) {
  const upstream = http.request(
    {
      host: api.hostname,
      port: api.port || 80,
      method: req.method,
      path: req.url,
      headers: req.headers,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.writeHead(502).end('api unreachable'));
  req.pipe(upstream);
}

const server = http.createServer((req, res) => {
  if (req.url === '/app' || req.url?.startsWith('/app/')) serveStatic(req, res);
  else proxy(req, res);
});

// WebSocket upgrades (/ws) go to the api byte for byte.
server.on('upgrade', (req, socket, head) => {
  const upstream = net.connect(Number(api.port || 80), api.hostname, () => {
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  const end = () => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.on('error', end);
  socket.on('error', end);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${port}/app/ (api: ${api.origin})`);
});
