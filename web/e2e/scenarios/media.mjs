// Uploads are never pages of our origin: an HTML file and an SVG file, declared as text/html and
// image/svg+xml and full of script, are opened at their /media/{id} URL by a signed-in browser
// (the token on every request, as a link opened by a client that sends it would). None of their
// script runs: each would call back to /pwned/… on our origin, write localStorage or open a
// dialog, and the test watches for all three. Without a token the URL answers 401.
import { randomUUID } from 'node:crypto';
import * as api from '../lib/api.mjs';
import { visible } from '../lib/app.mjs';
import { check, DESKTOP } from '../lib/browser.mjs';

/** Script that proves it ran by calling home with its name. */
function beacon(name) {
  return `fetch('/pwned/${name}');try{localStorage.setItem('pwned','${name}')}catch(e){};alert('${name}')`;
}

const HTML = `<!doctype html><html><head><title>upload</title>
<script>${beacon('html-script')}</script></head>
<body onload="${beacon('html-onload')}"><h1>An uploaded page</h1>
<img src="/nothing-here" onerror="${beacon('html-onerror')}">
<iframe src="javascript:parent.${beacon('html-iframe')}"></iframe></body></html>`;

const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100" onload="${beacon('svg-onload')}">
<script>${beacon('svg-script')}</script>
<foreignObject width="100" height="100"><body xmlns="http://www.w3.org/1999/xhtml">
<img src="/nothing-here" onerror="${beacon('svg-onerror')}"/></body></foreignObject>
<rect width="100" height="100" fill="red"/></svg>`;

export default async function media(run) {
  const owner = await api.register(run.baseUrl, `Uploader ${randomUUID().slice(0, 4)}`);
  const uploads = {};
  await run.step(
    'an HTML and an SVG file are uploaded as text/html and image/svg+xml',
    async () => {
      uploads.html = await api.upload(
        run.baseUrl,
        owner.access_token,
        Buffer.from(HTML),
        'text/html',
      );
      uploads.svg = await api.upload(
        run.baseUrl,
        owner.access_token,
        Buffer.from(SVG),
        'image/svg+xml',
      );
      check(
        uploads.html.content_type === 'text/html',
        `recorded as declared: ${JSON.stringify(uploads.html)}`,
      );
    },
  );

  await run.step('control: the same files served as pages of our origin do call home', async () => {
    // Proof that the watch below would see script running: a context of its own where the
    // test itself serves the files as text/html and image/svg+xml under our origin.
    const control = await run.newPerson('control', DESKTOP);
    const calls = [];
    control.page.on('dialog', (dialog) => void dialog.dismiss().catch(() => undefined));
    await control.context.route('**/pwned/**', (route) => {
      calls.push(new URL(route.request().url()).pathname);
      void route.fulfill({ status: 204 });
    });
    for (const [path, body, type] of [
      ['/control/page.html', HTML, 'text/html'],
      ['/control/image.svg', SVG, 'image/svg+xml'],
    ]) {
      await control.context.route(`**${path}`, (route) =>
        route.fulfill({ status: 200, body, contentType: type }),
      );
      await control.page.goto(run.url(path));
      await control.page.waitForTimeout(300);
    }
    run.data.control_calls = calls;
    check(
      calls.includes('/pwned/html-script') && calls.includes('/pwned/svg-script'),
      `the beacons work when script runs: ${calls.join(', ')}`,
    );
    await control.context.close();
  });

  const pwned = [];
  const dialogs = [];
  const person = await run.newPerson('uploader', DESKTOP, {
    acceptDownloads: true,
    extraHTTPHeaders: { authorization: `Bearer ${owner.access_token}` },
  });
  await person.context.route('**/pwned/**', (route) => {
    pwned.push(route.request().url());
    void route.fulfill({ status: 204 });
  });
  person.context.on('page', (page) =>
    page.on('dialog', (dialog) => dialogs.push(dialog.message())),
  );
  person.page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });

  run.data.opened = {};
  for (const kind of ['html', 'svg']) {
    await run.step(
      `the ${kind.toUpperCase()} upload opened at its URL runs no script`,
      async () => {
        const url = run.url(`/media/${uploads[kind].id}`);
        const page = await person.context.newPage();
        page.on('dialog', (dialog) => {
          dialogs.push(dialog.message());
          void dialog.dismiss();
        });
        const response = page.waitForResponse((r) => r.url() === url);
        const download = page.waitForEvent('download', { timeout: 5000 }).catch(() => null);
        // A download aborts the navigation ("Download is starting"): that is one good outcome.
        const navigation = await page.goto(url).catch((error) => error);
        const headers = (await response).headers();
        const saved = await download;
        await page.waitForTimeout(500);
        run.data.opened[kind] = {
          status: (await response).status(),
          content_type: headers['content-type'],
          disposition: headers['content-disposition'],
          csp: headers['content-security-policy'],
          nosniff: headers['x-content-type-options'],
          download: saved !== null,
          navigation: navigation instanceof Error ? navigation.message.split('\n')[0] : 'rendered',
        };
        const seen = run.data.opened[kind];
        check(seen.status === 200, `the owner may read it: ${JSON.stringify(seen)}`);
        check(
          seen.content_type === 'application/octet-stream' &&
            /^attachment/.test(seen.disposition ?? ''),
          `served as a download, not as ${kind}: ${JSON.stringify(seen)}`,
        );
        check(
          /sandbox/.test(seen.csp ?? '') && seen.nosniff === 'nosniff',
          `sandboxed: ${JSON.stringify(seen)}`,
        );
        await page.close();
      },
    );
  }

  await run.step('without a token the URL answers 401 and nothing of the upload', async () => {
    const anonymous = await run.newPerson('anonymous', DESKTOP);
    const response = await anonymous.page.goto(run.url(`/media/${uploads.html.id}`));
    check(response.status() === 401, `anonymous: ${response.status()}`);
    check(!(await response.text()).includes('uploaded page'), 'the 401 carries none of the upload');
  });

  await run.step(
    'nothing ran on our origin: no callback, no dialog, nothing in localStorage',
    async () => {
      await person.page.goto(run.url('/app/login/'));
      await visible(person.page.getByRole('heading', { name: 'Log in' }));
      const stored = await person.page.evaluate(() => localStorage.getItem('pwned'));
      run.data.pwned = pwned;
      run.data.dialogs = dialogs;
      check(pwned.length === 0, `upload script called home: ${pwned.join(', ')}`);
      check(dialogs.length === 0, `upload script opened dialogs: ${dialogs.join(', ')}`);
      check(stored === null, `upload script wrote localStorage: ${stored}`);
    },
  );
}
