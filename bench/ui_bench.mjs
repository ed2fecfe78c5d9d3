// UI benchmark in headless Debian chromium (driven by bench/ui_bench.sh,
// which starts a release server and loads the big run):
//   1. a run page with BIG_RUN's metrics (50 x 1,000,000 points): time from
//      navigation start until every chart is drawn;
//   2. the runs page with RUNS runs (created here through the API when the
//      server has fewer): time to first render, to apply a filter, and with
//      5 metadata columns to render and to sort by a metadata column;
//   3. Compare with the runs named COMPARE_PREFIX-* (bench/ui_bench.sh loads
//      20 x 10 metrics x 100,000 points): time until the 10-chart grid is
//      drawn;
//   4. a live run page with LIVE_EVENTS events (default 100,000, posted
//      here): bytes moved per 2 s refresh once the page has loaded.
// Times come from the page itself (performance.now() since navigation
// start, marks the UI records in window.__simtrack.marks).
// Env: SIMTRACK_URL, SIMTRACK_TOKEN, BIG_RUN_NAME, RUNS (default 10000), REPEAT (3).
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '../server/ui/tests/package.json'));
const { chromium } = require('playwright-core');

const URL_ = process.env.SIMTRACK_URL;
const TOKEN = process.env.SIMTRACK_TOKEN;
const BIG_RUN_NAME = process.env.BIG_RUN_NAME;
const RUNS = +(process.env.RUNS || 10000);
const REPEAT = +(process.env.REPEAT || 3);
const COMPARE_PREFIX = process.env.COMPARE_PREFIX || '';
const LIVE_EVENTS = +(process.env.LIVE_EVENTS ?? 100000);
const auth = { Authorization: 'Bearer ' + TOKEN };
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const fmt = (a) => `median ${median(a).toFixed(0)} ms (runs: ${a.map((x) => x.toFixed(0)).join(', ')})`;

async function ensureRuns() {
  const have = (await (await fetch(`${URL_}/api/runs?count=1`, { headers: auth })).json()).count;
  const todo = RUNS - have;
  const statuses = ['completed', 'completed', 'completed', 'failed', 'terminated', 'lost'];
  let next = 0;
  const worker = async () => {
    while (next < todo) {
      const i = next++;
      const body = {
        name: `sweep-${String(i).padStart(5, '0')}-re${1000 + (i % 97) * 10}`,
        folder: `/sweep/group-${i % 20}`,
        tags: ['sweep', i % 2 ? 'odd' : 'even', `g${i % 20}`],
        metadata: { i, re: 1000 + (i % 97) * 10, nx: [64, 128, 256][i % 3], solver: i % 5 ? 'jacobi' : 'gmres' },
        status: statuses[i % statuses.length],
      };
      const r = await fetch(`${URL_}/api/runs`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`creating run ${i}: ${r.status} ${await r.text()}`);
    }
  };
  if (todo > 0) {
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 8 }, worker));
    console.log(`created ${todo} runs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

const profile = mkdtempSync(join(tmpdir(), 'simtrack-ui-bench-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1600, height: 1000 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
await context.addInitScript((t) => { if (location.protocol.startsWith('http')) localStorage.setItem('simtrack.token', t); }, TOKEN);
const page = context.pages()[0] || (await context.newPage());
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));

try {
  if (BIG_RUN_NAME) {
    const found = await (await fetch(`${URL_}/api/runs?count=1&filters=${encodeURIComponent(JSON.stringify(['name == ' + BIG_RUN_NAME]))}`, { headers: auth })).json();
    if (!found.data.length) throw new Error(`no run named ${BIG_RUN_NAME}`);
    const run = found.data[0];
    const BIG_RUN = run.id;
    const names = Object.keys(run.metrics);
    const points = names.reduce((s, n) => s + run.metrics[n].count, 0);
    console.log(`run page: ${names.length} metrics, ${points.toLocaleString('en')} points in all`);
    const times = [];
    for (let k = 0; k < REPEAT; k++) {
      await page.goto('about:blank');
      await page.goto(`${URL_}/#/run/${BIG_RUN}`);
      const at = await page.waitForFunction((n) => {
        const m = window.__simtrack && window.__simtrack.marks.charts;
        return m && m.count >= n && window.__simtrack.charts.size >= n ? m.at : null;
      }, names.length, { timeout: 120000, polling: 10 });
      times.push(await at.jsonValue());
    }
    console.log(`  all ${names.length} charts drawn after navigation: ${fmt(times)}`);
    await page.screenshot({ path: join(process.env.SCREENSHOT_DIR || tmpdir(), 'bench-run-page.png') });
  }

  await ensureRuns();
  const first = [], status = [], tag = [];
  for (let k = 0; k < REPEAT; k++) {
    await page.goto('about:blank');
    await page.goto(`${URL_}/#/runs`);
    const at = await page.waitForFunction(() => window.__simtrack?.marks['runs-first']?.at, null, { timeout: 60000, polling: 10 });
    first.push(await at.jsonValue());
    const count = await page.evaluate(() => window.__simtrack.marks['runs-first'].count);
    if (k === 0) console.log(`runs page: ${count} runs`);
    // A filter from the status menu (applied at once)...
    status.push(await page.evaluate(() => new Promise((resolve) => {
      const sel = document.getElementById('f-status');
      const t0 = performance.now();
      delete window.__simtrack.marks['runs-update'];
      sel.value = 'failed';
      sel.dispatchEvent(new Event('change'));
      const poll = () => { const m = window.__simtrack.marks['runs-update']; if (m) resolve(m.at - t0); else requestAnimationFrame(poll); };
      poll();
    })));
    // ...and one typed into the tags box (includes the 120 ms typing debounce).
    tag.push(await page.evaluate(() => new Promise((resolve) => {
      const el = document.getElementById('f-tag');
      const t0 = performance.now();
      delete window.__simtrack.marks['runs-update'];
      el.value = 'g7';
      el.dispatchEvent(new Event('input'));
      const poll = () => { const m = window.__simtrack.marks['runs-update']; if (m) resolve(m.at - t0); else requestAnimationFrame(poll); };
      poll();
    })));
  }
  console.log(`  first render after navigation: ${fmt(first)}`);
  console.log(`  status filter (menu) applied: ${fmt(status)}`);
  console.log(`  tag filter (typed) applied: ${fmt(tag)}; of which 120 ms is the typing debounce`);
  await page.screenshot({ path: join(process.env.SCREENSHOT_DIR || tmpdir(), 'bench-runs-page.png') });

  // Five metadata columns: first render, then a sort by one of them (on the server).
  const cols = [], sorted = [];
  for (let k = 0; k < REPEAT; k++) {
    await page.goto('about:blank');
    await page.goto(`${URL_}/#/runs?mcols=i,re,nx,solver,missing`);
    const at = await page.waitForFunction(() => window.__simtrack?.marks['runs-first']?.at, null, { timeout: 60000, polling: 10 });
    cols.push(await at.jsonValue());
    sorted.push(await page.evaluate(() => new Promise((resolve) => {
      const btn = document.querySelector('button[data-sort="metadata.re"]');
      const t0 = performance.now();
      delete window.__simtrack.marks['runs-update'];
      btn.click();
      const poll = () => { const m = window.__simtrack.marks['runs-update']; if (m) resolve(m.at - t0); else requestAnimationFrame(poll); };
      poll();
    })));
  }
  console.log(`  with 5 metadata columns, first render: ${fmt(cols)}`);
  console.log(`  sorted by metadata.re (server): ${fmt(sorted)}`);

  if (COMPARE_PREFIX) {
    const list = await (await fetch(`${URL_}/api/runs?count=100&filters=${encodeURIComponent(JSON.stringify(['name contains ' + COMPARE_PREFIX]))}`, { headers: auth })).json();
    const ids = list.data.map((r) => r.id);
    const metrics = Object.keys(list.data[0].metrics).sort().slice(0, 10);
    const pts = list.data.reduce((n, r) => n + metrics.reduce((a, m) => a + ((r.metrics[m] || {}).count || 0), 0), 0);
    console.log(`compare: ${ids.length} runs x ${metrics.length} metrics, ${pts.toLocaleString('en')} points in all`);
    const grid = [];
    for (let k = 0; k < REPEAT; k++) {
      await page.goto('about:blank');
      await page.goto(`${URL_}/#/compare?ids=${ids.join(',')}&metrics=${metrics.map(encodeURIComponent).join(',')}`);
      const at = await page.waitForFunction((n) => { const m = window.__simtrack?.marks.compare; return m && m.charts >= n ? m.at : null; }, metrics.length, { timeout: 120000, polling: 10 });
      grid.push(await at.jsonValue());
    }
    console.log(`  grid drawn after navigation: ${fmt(grid)}`);
    await page.screenshot({ path: join(process.env.SCREENSHOT_DIR || tmpdir(), 'bench-compare.png') });
  }

  if (LIVE_EVENTS > 0) {
    const run = await (await fetch(`${URL_}/api/runs`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'bench-live-events', status: 'running', folder: '/bench' }) })).json();
    const t0 = Date.now();
    for (let i = 0; i < LIVE_EVENTS; i += 5000) {
      const events = Array.from({ length: Math.min(5000, LIVE_EVENTS - i) }, (_, k) => ({ message: `step ${i + k}: residual 1.0e-${(i + k) % 12}`, timestamp: new Date().toISOString().replace('Z', '') }));
      const r = await fetch(`${URL_}/api/events`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ run: run.id, events }) });
      if (!r.ok) throw new Error(`posting events: ${r.status} ${await r.text()}`);
    }
    console.log(`live run page: ${LIVE_EVENTS} events posted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await page.goto('about:blank');
    await page.goto(`${URL_}/#/run/${run.id}`);
    await page.waitForFunction((n) => document.querySelector('#events') && /of (\d+) events/.test(document.body.textContent) && document.body.textContent.includes(`of ${n} events`), LIVE_EVENTS, { timeout: 120000, polling: 100 });
    await page.waitForTimeout(2500);
    let bytes = 0, requests = 0;
    const onDone = async (req) => { try { const sz = await req.sizes(); bytes += sz.responseBodySize + sz.responseHeadersSize; requests++; } catch { /* page moved on */ } };
    page.on('requestfinished', onDone);
    // A heartbeat keeps the run live meanwhile; a few new events arrive, as from a solver.
    const refreshes = 5;
    for (let k = 0; k < refreshes; k++) {
      await fetch(`${URL_}/api/runs/${run.id}/heartbeat`, { method: 'PUT', headers: auth });
      await fetch(`${URL_}/api/events`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ run: run.id, events: [{ message: `live ${k}`, timestamp: new Date().toISOString().replace('Z', '') }] }) });
      await page.waitForTimeout(2000);
    }
    page.off('requestfinished', onDone);
    console.log(`  steady state: ${(bytes / refreshes / 1024).toFixed(1)} KB per 2 s refresh (${requests} requests over ${refreshes} refreshes)`);
  }
  if (errors.length) { console.error('page errors:', errors); process.exitCode = 1; }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
