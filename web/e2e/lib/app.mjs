// The web app as a person uses it, through accessible names and roles only (what a screen reader
// announces), so the tests double as a check that the UI is labelled.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { check, WAIT_MS } from './browser.mjs';

export function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Waits until `locator` is visible. */
export async function visible(locator, timeout = WAIT_MS) {
  await locator.first().waitFor({ state: 'visible', timeout });
  return locator;
}

/** Waits until `locator` matches nothing visible. */
export async function gone(locator, timeout = WAIT_MS) {
  await locator.first().waitFor({ state: 'hidden', timeout });
}

/** Polls `probe` until it returns something truthy; fails with `what` after `timeout`. */
export async function until(what, probe, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function register(run, page, { name, email, password }) {
  await page.goto(run.url('/app/register/'));
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await signedIn(page);
}

export async function login(run, page, { email, password }) {
  await page.goto(run.url('/app/login/'));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await signedIn(page);
}

/** The chat list with the realtime connection open. */
async function signedIn(page) {
  await page.waitForURL(/\/app\/chats\/$/, { timeout: WAIT_MS });
  await online(page);
}

/**
 * The connection status (`Online`, `Connecting…`, `Reconnecting…`, `Offline`). It sits above the
 * chat list, which a phone hides while a chat is open: read it there too.
 */
export function connectionStatus(page) {
  return page
    .getByRole('status', { includeHidden: true })
    .filter({ hasText: /^(Online|Offline|Connecting…|Reconnecting…)$/ })
    .first()
    .textContent();
}

/** The connection status says the socket is open. */
export async function online(page) {
  await until(
    'the connection to be Online',
    async () => (await connectionStatus(page)) === 'Online',
  );
}

export function sidebar(page) {
  return page.getByRole('complementary', { name: 'Chats' });
}

/** The chat list's link to the chat titled `title`. */
export function chatLink(page, title) {
  return sidebar(page).getByRole('link', { name: new RegExp(`^${escapeRegExp(title)}\\b`) });
}

/** Opens the direct chat with `otherName` from "New chat"; returns the chat id. */
export async function startDirectChat(run, page, otherName) {
  await sidebar(page).getByRole('link', { name: 'New chat' }).click();
  await page.getByLabel('Search people').fill(otherName);
  await page.getByRole('button', { name: `Message ${otherName}` }).click();
  await page.waitForURL(/\/app\/chat\/\?id=/, { timeout: WAIT_MS });
  await visible(page.getByRole('heading', { level: 2, name: otherName }));
  return new URL(page.url()).searchParams.get('id');
}

/** Creates a group named `name` with `memberNames` from "New group"; returns the chat id. */
export async function createGroup(run, page, name, memberNames) {
  await sidebar(page).getByRole('link', { name: 'New group' }).click();
  await page.getByLabel('Group name').fill(name);
  for (const member of memberNames) {
    await page.getByLabel('Add people').fill(member);
    await page.getByRole('button', { name: `Add ${member}` }).click();
    await visible(page.getByRole('button', { name: `Remove ${member}` }));
  }
  await page.getByRole('button', { name: 'Create group' }).click();
  await page.waitForURL(/\/app\/chat\/\?id=/, { timeout: WAIT_MS });
  await visible(page.getByRole('heading', { level: 2, name }));
  return new URL(page.url()).searchParams.get('id');
}

/** The scrollable message list of the open chat. */
export function messageList(page, title) {
  return page.getByRole('region', { name: `Messages with ${title}` });
}

/** The rendered rows (messages) of the open chat's list. */
export function rows(page, title) {
  return messageList(page, title).getByRole('listitem');
}

/** The row that shows `text`. */
export function rowWith(page, title, text) {
  return rows(page, title).filter({ hasText: text });
}

/** How many messages the open chat's list holds (rendered or not): its rows' `aria-setsize`. */
export async function messageCount(page, title) {
  const row = rows(page, title).last();
  if ((await rows(page, title).count()) === 0) return 0;
  return Number(await row.getAttribute('aria-setsize'));
}

export function composer(page) {
  return page.getByRole('textbox', { name: 'Message' });
}

export async function sendText(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

/** The tick mark of the row showing `text` (`Sending`, `Sent`, `Read`, `Not sent`). */
export function ticks(row, label) {
  return row.getByRole('img', { name: label, exact: true });
}

const require = createRequire(import.meta.url);
let axeSource = null;

/**
 * Runs axe-core (WCAG 2.x A and AA rules and best practices) on the page as it is now. Its
 * source goes in through `page.evaluate`, which the page's CSP does not govern. Returns the
 * serious and critical violations, each with its rule, impact and first offending nodes.
 */
export async function axe(page) {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  const results = await page.evaluate(async (source) => {
    if (!globalThis.axe) (0, eval)(source);
    return globalThis.axe.run(document, {
      runOnly: {
        type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'],
      },
      resultTypes: ['violations'],
    });
  }, axeSource);
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({
      rule: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => ({ target: n.target, summary: n.failureSummary })),
    }));
}

/** Runs axe and fails on serious or critical violations; records the result under `name`. */
export async function accessible(run, page, name) {
  const violations = await axe(page);
  run.data.axe ??= {};
  run.data.axe[name] = violations.length;
  check(
    violations.length === 0,
    `axe on ${name}: ${violations.length} serious/critical violation(s): ${JSON.stringify(violations)}`,
  );
}

/** Nothing sticks out sideways (no horizontal scrolling) and `locator` lies within the viewport. */
export async function fitsViewport(page, what, locators = []) {
  const { scrollWidth, innerWidth, innerHeight } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    innerHeight: window.innerHeight,
  }));
  check(
    scrollWidth <= innerWidth,
    `${what}: the page scrolls sideways (${scrollWidth} > ${innerWidth})`,
  );
  for (const [name, locator] of locators) {
    const box = await locator.boundingBox();
    check(box, `${what}: ${name} is not rendered`);
    check(
      box.x >= 0 &&
        box.y >= 0 &&
        box.x + box.width <= innerWidth + 1 &&
        box.y + box.height <= innerHeight + 1,
      `${what}: ${name} is outside the ${innerWidth}×${innerHeight} viewport: ${JSON.stringify(box)}`,
    );
  }
}

/**
 * Routes the context's `/ws` sockets (and the SFU's `/rtc` ones) through Playwright so the test
 * can cut them as a dropped network would (`context.setOffline` alone leaves open WebSockets
 * alone): `cut()` takes the context offline, closes every socket abnormally and refuses new ones;
 * `restore()` undoes that. `urls` lists every socket URL asked for (a reconnect carries
 * `?cursor=`).
 */
export async function cuttableSockets(context) {
  const sockets = { cut: false, open: [], urls: [] };
  await context.routeWebSocket(/\/(ws|rtc)(\?|$)/, (route) => {
    sockets.urls.push(route.url());
    if (sockets.cut) {
      void route.close({ code: 1006, reason: '' });
      return;
    }
    const server = route.connectToServer();
    sockets.open.push({ route, server });
  });
  return {
    urls: sockets.urls,
    async cut() {
      sockets.cut = true;
      await context.setOffline(true);
      const open = sockets.open.splice(0);
      for (const { route, server } of open) {
        await route.close({ code: 1006, reason: '' }).catch(() => undefined);
        await server.close().catch(() => undefined);
      }
      return open.length;
    },
    async restore() {
      sockets.cut = false;
      await context.setOffline(false);
    },
  };
}
