// Browser calls under load, against a running stack with an SFU (scripts/bench calls starts a
// release one): six people, each in a Chromium of their own with a fake camera and microphone,
// in one group video call through the SFU.
//   - CPU over SECONDS of the call: the SFU process and each browser (its whole process tree),
//     from /proc (utime + stime), as a share of one core;
//   - join time: the sixth person leaves and joins again JOINS times; each join is timed from
//     the click on "Join call" to the first remote video frame on their screen (a <video>
//     element's decoded frames), p50/p95.
// Prints a table (and the raw numbers as JSON with --json).
//
// Each join is also split into its steps (the api's answer, media connected, the tiles shown).
//
//   node web/e2e/bench-calls.mjs BASE_URL --sfu-pid PID [--people N] [--seconds N] [--joins N]
//                                [--json]
import { readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as api from './lib/api.mjs';
import { chatLink, login, until, visible } from './lib/app.mjs';
import { CHROMIUM, launchBrowser } from './lib/browser.mjs';
import {
  answer,
  hangUp,
  instrumentCalls,
  seesVideoOf,
  startCall,
  tileFrames,
} from './lib/calls.mjs';

const argv = process.argv.slice(2);
const baseUrl = argv[0]?.replace(/\/$/, '');
const option = (name, fallback) => {
  const at = argv.indexOf(`--${name}`);
  return at > 0 ? Number(argv[at + 1]) : fallback;
};
const SFU_PID = option('sfu-pid', 0);
if (!baseUrl || !/^https?:\/\//.test(baseUrl) || !SFU_PID) {
  console.error(
    'usage: node web/e2e/bench-calls.mjs BASE_URL --sfu-pid PID [--people N] [--seconds N] [--joins N] [--json]',
  );
  process.exit(2);
}
const PEOPLE = option('people', 6);
const SECONDS = option('seconds', 60);
const JOINS = option('joins', 20);
const TARGETS = { joinP50: 1500, joinP95: 2000 };
const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far, or 0 if it is gone. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

/** Every process as `[pid, parent pid, command line]`. */
function processes() {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        return [[Number(pid), parent, cmdline]];
      } catch {
        return [];
      }
    });
}

/** The process tree of the browser launched with `marker` on its command line. */
function browserTree(marker) {
  const all = processes();
  const root = all.find(([, , cmdline]) => cmdline.includes(marker));
  if (!root) return [];
  const tree = new Set([root[0]]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, parent] of all) {
      if (tree.has(parent) && !tree.has(pid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return [...tree];
}

const treeSeconds = (pids) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// ----- the run ------------------------------------------------------------------------------------
const tag = randomUUID().slice(0, 4);
const accounts = await Promise.all(
  Array.from({ length: PEOPLE }, (_, i) => api.register(baseUrl, `Caller ${i + 1} ${tag}`)),
);
const groupName = `Bench call ${tag}`;
await api.createGroup(
  baseUrl,
  accounts[0].access_token,
  groupName,
  accounts.slice(1).map((a) => a.user.id),
);
const run = { url: (path) => `${baseUrl}${path}` };
const people = [];
for (const [index, account] of accounts.entries()) {
  const marker = `--parley-bench-caller=${tag}-${index}`;
  const browser = await launchBrowser([marker]);
  const context = await browser.newContext({ viewport: { width: 640, height: 480 } });
  await instrumentCalls(context);
  const page = await context.newPage();
  await login(run, page, account);
  people.push({ browser, page, account, marker, id: account.user.id });
}
const chromiumVersion = people[0].browser.version();

const openGroup = async (person) => {
  await chatLink(person.page, groupName).click();
  await visible(person.page.getByRole('heading', { level: 2, name: groupName }));
};
await openGroup(people[0]);
await startCall(people[0].page, 'video', groupName);
await Promise.all(people.slice(1).map((p) => answer(p.page)));
await Promise.all(
  people.map((p) =>
    seesVideoOf(
      p.page,
      people.filter((o) => o !== p).map((o) => o.id),
      60000,
    ),
  ),
);

// CPU over SECONDS with everyone in the call.
const trees = people.map((p) => browserTree(p.marker));
const before = { sfu: cpuSeconds(SFU_PID), browsers: trees.map(treeSeconds) };
const started = Date.now();
await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
const elapsed = (Date.now() - started) / 1000;
const cpu = {
  sfu: ((cpuSeconds(SFU_PID) - before.sfu) / elapsed) * 100,
  browsers: trees.map((tree, i) => ((treeSeconds(tree) - before.browsers[i]) / elapsed) * 100),
};
const decoded = await Promise.all(people.map((p) => tileFrames(p.page)));

// Joins: the last person leaves and joins again.
const joiner = people[PEOPLE - 1];
const others = people.slice(0, -1).map((p) => p.id);
const joins = [];
const joinSteps = [];
for (let i = 0; i < JOINS; i += 1) {
  await hangUp(joiner.page);
  await joiner.page.getByRole('link', { name: 'Back to the chat' }).click();
  const join = joiner.page.getByRole('button', { name: 'Join call' });
  await visible(join);
  // The others see the leave before the next join.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const clicked = Date.now();
  await join.click();
  const steps = {};
  await until(
    'a remote video frame',
    async () => {
      const seen = await joiner.page.evaluate(() => ({
        answered: !!document.querySelector('main.call')?.dataset.callId,
        connected: (window.__parleyPeers ?? []).at(-1)?.connectionState === 'connected',
        tiles: document.querySelectorAll('li.tile[data-user-id]').length > 0,
        frame: [...document.querySelectorAll('li.tile[data-user-id] video')].some(
          (v) => v.getVideoPlaybackQuality().totalVideoFrames > 0,
        ),
      }));
      for (const [step, done] of Object.entries(seen)) {
        if (done) steps[step] ??= Date.now() - clicked;
      }
      return seen.frame;
    },
    30000,
  );
  joins.push(Date.now() - clicked);
  joinSteps.push(steps);
  await seesVideoOf(joiner.page, others, 30000);
}
for (const person of people) await person.browser.close().catch(() => undefined);

const results = {
  chromium: chromiumVersion,
  seconds: elapsed,
  cpu_percent: cpu,
  frames_shown: decoded,
  joins_ms: joins,
  join_p50_ms: percentile(joins, 50),
  join_p95_ms: percentile(joins, 95),
  join_steps_ms: joinSteps,
};
const stepP50 = (step) =>
  percentile(joinSteps.map((s) => s[step] ?? NaN).filter(Number.isFinite), 50);
const verdict = (ok) => (ok ? 'ok' : 'MISSED');
const pct = (value) => `${value.toFixed(1)} %`;
const rows = [
  ['what', 'measured', 'target', ''],
  [`SFU CPU, ${PEOPLE}-person video call (one core = 100 %)`, pct(cpu.sfu), '—', ''],
  ...cpu.browsers.map((value, i) => [
    `browser ${i + 1} CPU (whole process tree)`,
    pct(value),
    '—',
    '',
  ]),
  [
    `join: click → first remote frame, p50 of ${joins.length}`,
    `${results.join_p50_ms} ms`,
    `≤ ${TARGETS.joinP50} ms`,
    verdict(results.join_p50_ms <= TARGETS.joinP50),
  ],
  [
    '  of which (p50): api answered, media connected, tiles shown',
    `${stepP50('answered')} / ${stepP50('connected')} / ${stepP50('tiles')} ms`,
    '',
    '',
  ],
  [
    `join: click → first remote frame, p95 of ${joins.length}`,
    `${results.join_p95_ms} ms`,
    `≤ ${TARGETS.joinP95} ms`,
    verdict(results.join_p95_ms <= TARGETS.joinP95),
  ],
];
const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column].length)));
console.log(
  `browser calls: ${PEOPLE} headless Chromium ${chromiumVersion} (${CHROMIUM}), fake 640×480 camera in 3 simulcast layers, ${baseUrl}; CPU over ${elapsed.toFixed(0)} s on ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length ?? '?'} cores`,
);
for (const row of rows) {
  console.log(
    `${row[0].padEnd(widths[0])}  ${row[1].padEnd(widths[1])}  ${row[2].padEnd(widths[2])}  ${row[3]}`,
  );
}
console.log(`all joins (ms): ${joins.join(', ')}`);
if (argv.includes('--json')) console.log(JSON.stringify(results));
