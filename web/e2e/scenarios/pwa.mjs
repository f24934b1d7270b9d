// The app installs like a phone app and starts offline: its manifest and icons, a service worker
// that takes /app/ over and caches only the app shell (never an API response or media, even after
// a chat with a photo), an offline reload that still shows the app and says the server cannot be
// reached, and the way back once the network returns.
import { randomUUID } from 'node:crypto';
import * as api from '../lib/api.mjs';
import {
  chatLink,
  composer,
  register,
  rowWith,
  sendText,
  startDirectChat,
  until,
  visible,
} from '../lib/app.mjs';
import { check, PHONE } from '../lib/browser.mjs';
import { png } from '../lib/files.mjs';
import { shownPhoto } from './conversation.mjs';

/** Every URL path the page's caches hold. */
function cachedPaths(page) {
  return page.evaluate(async () => {
    const paths = [];
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const request of await cache.keys()) paths.push(new URL(request.url).pathname);
    }
    return paths;
  });
}

export default async function pwa(run) {
  const tag = randomUUID().slice(0, 4);
  const account = { name: `Pia ${tag}`, email: api.uniqueEmail('pia'), password: api.PASSWORD };
  const friend = await api.register(run.baseUrl, `Quinn ${tag}`);
  const { context, page } = await run.newPerson('pia', PHONE);

  await run.step('the manifest makes the app installable: scope, standalone, icons', async () => {
    await page.goto(`${run.baseUrl}/app/`);
    const href = await page.locator('link[rel="manifest"]').getAttribute('href');
    check(href === '/app/manifest.webmanifest', `the manifest link: ${href}`);
    const manifest = await page.evaluate(async (url) => (await fetch(url)).json(), href);
    check(
      manifest.start_url === '/app/' &&
        manifest.scope === '/app/' &&
        manifest.display === 'standalone',
      `start, scope and display: ${JSON.stringify(manifest)}`,
    );
    run.data.icons = {};
    for (const size of [192, 512]) {
      const icon = manifest.icons.find(
        (i) => i.sizes === `${size}x${size}` && i.type === 'image/png',
      );
      check(icon, `a ${size} px PNG icon in ${JSON.stringify(manifest.icons)}`);
      const decoded = await page.evaluate(async (src) => {
        const response = await fetch(src);
        const bitmap = await createImageBitmap(await response.blob());
        return {
          type: response.headers.get('content-type'),
          width: bitmap.width,
          height: bitmap.height,
        };
      }, icon.src);
      run.data.icons[size] = decoded;
      check(
        decoded.type === 'image/png' && decoded.width === size && decoded.height === size,
        `the ${size} px icon: ${JSON.stringify(decoded)}`,
      );
    }
    check(
      manifest.icons.some((i) => i.purpose === 'maskable'),
      'a maskable icon for phone home screens',
    );
  });

  await run.step('a service worker takes the app over', async () => {
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    check(scope === `${run.baseUrl}/app/`, `the worker's scope: ${scope}`);
    await page.reload();
    const controller = await until('the page to be controlled by the worker', () =>
      page.evaluate(() => navigator.serviceWorker.controller?.scriptURL ?? null),
    );
    check(controller === `${run.baseUrl}/app/sw.js`, `the controlling worker: ${controller}`);
  });

  await run.step('using the app caches the app shell and nothing else', async () => {
    await register(run, page, account);
    await startDirectChat(run, page, friend.user.name);
    await sendText(page, `Hello ${tag}`);
    await composer(page).fill('a cached photo?');
    await page.getByLabel('Photo or video to send').setInputFiles({
      name: 'cached.png',
      mimeType: 'image/png',
      buffer: png(64, 48, 5),
    });
    await shownPhoto(rowWith(page, friend.user.name, 'a cached photo?'), 'cached.png');
    const paths = await cachedPaths(page);
    run.data.cached = { files: paths.length, pages: paths.filter((p) => p.endsWith('/')) };
    const outside = paths.filter((p) => !p.startsWith('/app/'));
    check(outside.length === 0, `cached outside the app shell: ${outside.join(', ')}`);
    check(
      paths.some((p) => p.endsWith('.wasm')),
      'the client core is cached for an offline start',
    );
    check(paths.includes('/app/chats/'), `the chat list page is cached: ${paths.join(', ')}`);
  });

  await run.step('offline, the app still starts and says it cannot reach the server', async () => {
    await context.setOffline(true);
    await page.goto(`${run.baseUrl}/app/chats/`);
    await visible(page.getByRole('heading', { name: 'Parley' }));
    await visible(page.getByRole('alert').getByText(/reach the server/));
  });

  await run.step('back online, the same session picks up where it was', async () => {
    await context.setOffline(false);
    await page.getByRole('button', { name: 'Try again' }).click();
    await visible(chatLink(page, friend.user.name));
  });
}
