// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) for the browser tests
// and the benchmark: launching it, browser contexts that record every Content-Security-Policy
// violation and page error, screenshots, and the JSON report a run prints as its last line.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.PARLEY_TEST_CHROMIUM || '/usr/bin/chromium';
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Where screenshots go (scripts/test's state directory unless told otherwise). */
export const ARTIFACTS_DIR =
  process.env.PARLEY_WEB_ARTIFACTS || join(REPO_ROOT, '.parley/test/artifacts/web');

/** An iPhone-sized phone and a laptop. */
export const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
export const DESKTOP = { viewport: { width: 1280, height: 800 } };

/** How long one UI expectation may take (the suite runs on two shared cores). */
export const WAIT_MS = Number(process.env.PARLEY_WEB_WAIT_MS || 20000);

/** `extraArgs`: more command-line switches (a benchmark marks its browsers to find them). */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-features=Translate,OptimizationHints,MediaRouter',
      // Calls: a generated camera and microphone, no permission prompt, sound without a click.
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}

/** Raised by {@link check}: an expectation about the app that did not hold. */
export class CheckFailed extends Error {}

export function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

/**
 * One scenario's run: its browser, the steps it went through, everything the pages logged that
 * matters (CSP violations, uncaught errors) and the screenshots taken. `finish()` prints the
 * report as one JSON line.
 */
export class Run {
  constructor(scenario, baseUrl, browser, args) {
    this.scenario = scenario;
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.browser = browser;
    this.args = args;
    this.steps = [];
    this.cspViolations = [];
    this.pageErrors = [];
    this.consoleErrors = [];
    this.screenshots = [];
    this.data = {};
    this.contexts = [];
    this.started = Date.now();
  }

  url(path) {
    return `${this.baseUrl}${path}`;
  }

  /** Runs one named step; a failure names the step in the report. */
  async step(name, body) {
    const started = Date.now();
    const entry = { name, ok: false, ms: 0 };
    this.steps.push(entry);
    try {
      const value = await body();
      entry.ok = true;
      return value;
    } finally {
      entry.ms = Date.now() - started;
    }
  }

  /**
   * A fresh browser context (own cookies, storage and cache: another person, another device)
   * whose pages report CSP violations, uncaught errors and console errors.
   */
  async newContext(label, device = DESKTOP, options = {}) {
    const context = await this.browser.newContext({ ...device, ...options });
    context.setDefaultTimeout(WAIT_MS);
    this.contexts.push(context);
    await watchContext(context, label, this);
    return context;
  }

  /** A context with one page open: `{ context, page }`. */
  async newPerson(label, device = DESKTOP, options = {}) {
    const context = await this.newContext(label, device, options);
    const page = await context.newPage();
    return { label, context, page };
  }

  async screenshot(page, name) {
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    const path = join(ARTIFACTS_DIR, `${name}.png`);
    await page.screenshot({ path, fullPage: false });
    this.screenshots.push(path);
    return path;
  }

  report(error) {
    return {
      scenario: this.scenario,
      ok: !error,
      error: error ? String(error.stack || error) : null,
      failed_step: error ? (this.steps.find((s) => !s.ok)?.name ?? null) : null,
      steps: this.steps,
      csp_violations: this.cspViolations,
      page_errors: this.pageErrors,
      console_errors: this.consoleErrors,
      screenshots: this.screenshots,
      data: this.data,
      ms: Date.now() - this.started,
    };
  }
}

const CSP_TEXT = /Content[ -]Security[ -]Policy/i;

/** Records what the pages of `context` say about CSP and errors into `run`. */
async function watchContext(context, label, run) {
  // The browser logs every blocked load or inline script to the console; the event carries
  // the directive. The init script runs through the DevTools protocol, which the page's CSP
  // does not govern.
  await context.exposeBinding('__parleyCspViolation', ({ page }, violation) => {
    run.cspViolations.push({ who: label, page: page?.url() ?? null, ...violation });
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const report = globalThis.__parleyCspViolation;
      if (typeof report === 'function') {
        void report({
          directive: event.effectiveDirective,
          blocked: event.blockedURI,
          source: event.sourceFile,
          line: event.lineNumber,
          sample: event.sample,
        });
      }
    });
  });
  context.on('console', (message) => {
    if (message.type() !== 'error' && message.type() !== 'warning') return;
    const entry = { who: label, page: message.page()?.url() ?? null, text: message.text() };
    if (CSP_TEXT.test(entry.text)) run.cspViolations.push({ ...entry, via: 'console' });
    else if (message.type() === 'error') run.consoleErrors.push(entry);
  });
  context.on('weberror', (error) => {
    run.pageErrors.push({
      who: label,
      page: error.page()?.url() ?? null,
      text: String(error.error()?.stack || error.error()),
    });
  });
}

/** Writes the report as the last line of stdout; exit status 1 when the scenario failed. */
export function printReport(report) {
  process.stdout.write(`${JSON.stringify(report)}\n`);
  if (!report.ok) process.exitCode = 1;
}
