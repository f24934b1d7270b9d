// Runs one browser scenario (scenarios/NAME.mjs) against a Parley stack that serves the web app
// and prints its report as the last line of stdout (JSON: ok, the steps, CSP violations, page
// errors, screenshots, scenario data). The Rust e2e suite (tests/tests/e2e/web.rs) starts the
// stack, runs this and asserts on the report.
//
//   node web/e2e/run.mjs SCENARIO BASE_URL [KEY=VALUE...]
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACTS_DIR, launchBrowser, printReport, Run } from './lib/browser.mjs';

const [scenario, baseUrl, ...rest] = process.argv.slice(2);
if (!scenario || !/^[a-z][a-z0-9-]*$/.test(scenario) || !baseUrl) {
  console.error('usage: node web/e2e/run.mjs SCENARIO BASE_URL [KEY=VALUE...]');
  process.exit(2);
}
const args = Object.fromEntries(
  rest.map((pair) => {
    const at = pair.indexOf('=');
    return at < 0 ? [pair, 'true'] : [pair.slice(0, at), pair.slice(at + 1)];
  }),
);

let module;
try {
  module = await import(`./scenarios/${scenario}.mjs`);
} catch (error) {
  console.error(`no scenario ${scenario}: ${error.message}`);
  process.exit(2);
}

// Screenshots of an earlier failure of this scenario would mislead.
try {
  for (const name of readdirSync(ARTIFACTS_DIR)) {
    if (name.startsWith(`failed-${scenario}-`)) rmSync(join(ARTIFACTS_DIR, name));
  }
} catch {
  // No artifacts yet.
}

const browser = await launchBrowser();
const run = new Run(scenario, baseUrl, browser, args);
let failure = null;
// A promise the scenario forgot still fails the run, with a report.
const stray = [];
process.on('unhandledRejection', (error) => stray.push(error));
try {
  await module.default(run);
  if (stray.length > 0) throw new Error(`unhandled rejection: ${stray[0]?.stack ?? stray[0]}`);
} catch (error) {
  failure = error;
  // What each page looked like when it failed.
  for (const [index, context] of run.contexts.entries()) {
    for (const [pageIndex, page] of context.pages().entries()) {
      await run.screenshot(page, `failed-${scenario}-${index}-${pageIndex}`).catch(() => undefined);
    }
  }
}
await browser.close().catch(() => undefined);
printReport(run.report(failure));
