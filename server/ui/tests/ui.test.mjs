// End-to-end tests of the web UI in headless Debian chromium, against a real
// `simtrack server` and the real C example (examples/c/heat.c) reporting to it.
// scripts/test.d/30-ui.sh builds everything, starts the server and sets:
//   SIMTRACK_URL, SIMTRACK_TOKEN   the server and a token for it
//   HEAT_BIN                       heat.c compiled with slow_heat.h
//   REPO                           repository root (heat saves its source relative to it)
//   SCREENSHOT_DIR                 where the screenshots go (git-ignored)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { waitFor as waitForWithin } from './harness.mjs';

const URL_ = process.env.SIMTRACK_URL;
const TOKEN = process.env.SIMTRACK_TOKEN;
const HEAT = process.env.HEAT_BIN;
const REPO = process.env.REPO;
const SHOTS = process.env.SCREENSHOT_DIR || join(tmpdir(), 'simtrack-ui-screenshots');
for (const [k, v] of Object.entries({ SIMTRACK_URL: URL_, SIMTRACK_TOKEN: TOKEN, HEAT_BIN: HEAT, REPO })) {
  if (!v) throw new Error(`${k} must be set (run scripts/test.d/30-ui.sh)`);
}
mkdirSync(SHOTS, { recursive: true });
const scratch = mkdtempSync(join(tmpdir(), 'simtrack-ui-'));

let context, page;
const pageErrors = [];

async function api(path, { method = 'GET', body, token = TOKEN } = {}) {
  const r = await fetch(URL_ + path, {
    method,
    headers: { Authorization: 'Bearer ' + token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text.replace(/"value":(-?Infinity|NaN)/g, '"value":null')) : null };
}
const q = (v) => encodeURIComponent(JSON.stringify(v));

const waitFor = (what, f, timeoutMs = 20000) => waitForWithin(what, f, timeoutMs);

/** Examples still running: a test that fails before it stops its example
 * (a million steps, 2 ms each) must not leave it holding the run up. */
const running = new Set();

/** Starts the C example; resolves `done` with its exit code and output. */
function startHeat(steps, delayUs, env = {}, cwd = REPO) {
  const work = mkdtempSync(join(scratch, 'heat-'));
  const child = spawn(HEAT, [String(steps), work], {
    cwd,
    env: { ...process.env, SIMTRACK_URL: URL_, SIMTRACK_TOKEN: TOKEN, SIMTRACK_ABORT_POLL: '0.5', HEAT_STEP_DELAY_US: String(delayUs), ...env },
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const done = new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
  running.add(child);
  child.on('exit', () => running.delete(child));
  return { child, work, done, output: () => out };
}

/** The id of the newest run named heat-c created after `since` (ms). */
async function newHeatRun(since, token = TOKEN) {
  return waitFor('the heat run to register', async () => {
    const r = await api('/api/runs?filters=' + q(['name == heat-c']) + '&sorting=' + q([{ id: 'created', desc: true }]) + '&count=1', { token });
    const run = r.body.data[0];
    return run && Date.parse(run.created + 'Z') >= since - 1000 ? run : null;
  });
}

/** What heat.c logs at each step (the same recurrence, in doubles). */
function heatSeries(steps) {
  const NX = 64, alpha = 0.25;
  let u = Array.from({ length: NX }, (_, i) => (i > Math.floor(NX / 3) && i < Math.floor((2 * NX) / 3) ? 1 : 0)); // C integer division
  const out = { residual: [], energy: [], u_mid: [] };
  for (let it = 0; it < steps; it++) {
    const un = new Array(NX).fill(0);
    let residual = 0, energy = 0;
    for (let i = 1; i < NX - 1; i++) {
      un[i] = u[i] + alpha * (u[i - 1] - 2 * u[i] + u[i + 1]);
      residual = Math.max(residual, Math.abs(un[i] - u[i]));
    }
    u = un;
    for (let i = 0; i < NX; i++) energy += u[i] * u[i];
    out.residual.push(residual); out.energy.push(energy); out.u_mid.push(u[NX / 2]);
  }
  return out;
}
const close = (a, b) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));

before(async () => {
  context = await chromium.launchPersistentContext(mkdtempSync(join(scratch, 'profile-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1440, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/401/.test(m.text())) pageErrors.push(m.text()); });
  page.on('dialog', (d) => d.accept());
});

after(async () => {
  for (const child of running) child.kill('SIGKILL');
  if (context) await context.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('sign-in is required, a bad token is refused, a good one opens the runs', async () => {
  await page.goto(URL_ + '/#/runs');
  await page.waitForSelector('form#signin');
  assert.equal(await page.locator('table#runs').count(), 0, 'no runs table before sign-in');
  assert.equal((await fetch(URL_ + '/api/runs')).status, 401, 'the data API needs a token');
  assert.equal((await fetch(URL_ + '/api/ui/whoami')).status, 401);
  await page.fill('#token', 'not-a-token');
  await page.click('form#signin button[type=submit]');
  await page.waitForSelector('form#signin [role=alert]');
  assert.match(await page.textContent('form#signin [role=alert]'), /not valid/);
  await page.fill('#token', TOKEN);
  await page.click('form#signin button[type=submit]');
  await page.waitForSelector('table#runs');
  assert.equal(await page.evaluate(() => localStorage.getItem('simtrack.token')), TOKEN);
});

const finished = {}; // run id and work dir of the completed heat run
const STEPS = 600; // of that run: fewer than a chart's max_points, so every point is drawn

test('a C example run appears in the runs table and its status changes live', async () => {
  await page.goto(URL_ + '/#/runs');
  await page.waitForSelector('table#runs');
  await page.evaluate(() => { window.__noReload = true; });
  const since = Date.now();
  const heat = startHeat(STEPS, 10000); // ~6 s: several refreshes of the table see it running
  const run = await newHeatRun(since);
  const row = `tr[data-run-id="${run.id}"]`;
  await page.waitForSelector(`${row} [data-testid=status]:text-is("running")`, { timeout: 15000 });
  const { code, out } = await heat.done;
  assert.equal(code, 0, out);
  await page.waitForSelector(`${row} [data-testid=status]:text-is("completed")`, { timeout: 15000 });
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the table updated without a reload');
  assert.equal(await page.textContent(`${row} td.name a`), 'heat-c');
  finished.id = run.id;
  finished.work = heat.work;
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, 'runs.png'), fullPage: true });
});

test('the run page charts show exactly the points heat.c logged, with hover values', async () => {
  assert.ok(finished.id, 'needs the completed run');
  await page.click(`tr[data-run-id="${finished.id}"] td.name a`);
  await page.waitForSelector('#run-name');
  const expected = heatSeries(STEPS);
  for (const metric of ['residual', 'energy', 'u_mid']) {
    const data = await waitFor(`chart ${metric}`, () => page.evaluate((m) => {
      const u = window.__simtrack.charts.get(m);
      return u ? [Array.from(u.data[0]), Array.from(u.data[1])] : null;
    }, metric));
    const [x, y] = data;
    assert.equal(x.length, STEPS, `${metric}: every point is drawn`);
    x.forEach((v, i) => assert.equal(v, i, `${metric}: step ${i}`));
    y.forEach((v, i) => assert.ok(close(v, expected[metric][i]), `${metric}[${i}] = ${v}, heat.c logged ${expected[metric][i]}`));
  }
  // Hovering over the energy chart shows the value at the step under the cursor.
  const over = page.locator('.chart[data-metric="energy"] .u-over');
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const hover = await waitFor('hover legend', () => page.evaluate(() => {
    const u = window.__simtrack.charts.get('energy');
    const i = u.cursor.idx;
    const val = u.root.querySelectorAll('.u-legend .u-value')[1]?.textContent;
    return i != null && val && val !== '--' ? { i, step: u.data[0][i], val } : null;
  }));
  assert.ok(hover.step > STEPS * 0.2 && hover.step < STEPS * 0.8, `cursor at step ${hover.step}`);
  assert.ok(Math.abs(parseFloat(hover.val) - expected.energy[hover.step]) <= 1e-5 * expected.energy[hover.step],
    `legend shows ${hover.val} at step ${hover.step}, heat.c logged ${expected.energy[hover.step]}`);
  // Small values keep their significant digits (a residual of 1e-4 is not "0").
  const rbox = await page.locator('.chart[data-metric="residual"] .u-over').boundingBox();
  await page.mouse.move(rbox.x + rbox.width * 0.9, rbox.y + rbox.height / 2);
  const rh = await waitFor('residual hover', () => page.evaluate(() => {
    const u = window.__simtrack.charts.get('residual');
    const val = u.root.querySelectorAll('.u-legend .u-value')[1]?.textContent;
    return u.cursor.idx != null && val && val !== '--' ? { step: u.data[0][u.cursor.idx], val } : null;
  }));
  assert.ok(Math.abs(parseFloat(rh.val) - expected.residual[rh.step]) <= 1e-4 * expected.residual[rh.step],
    `residual legend shows ${rh.val} at step ${rh.step}, heat.c logged ${expected.residual[rh.step]}`);
  // Dragging zooms in and fetches that range in detail; a double-click
  // shows the whole series again.
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  const zoom = await waitFor('zoomed detail', () => page.evaluate(() => {
    const z = window.__simtrack.marks.zoom;
    const u = window.__simtrack.charts.get('energy');
    return z && z.metric === 'energy' ? { min: u.scales.x.min, max: u.scales.x.max, x: Array.from(u.data[0]), y: Array.from(u.data[1]) } : null;
  }));
  assert.ok(zoom.min > STEPS * 0.3 && zoom.max < STEPS * 0.7, `zoomed to ${zoom.min}..${zoom.max}`);
  assert.ok(zoom.x[0] >= Math.floor(zoom.min) - 1 && zoom.x.at(-1) <= Math.ceil(zoom.max) + 1, 'only the zoomed range was fetched');
  zoom.x.forEach((s, i) => assert.ok(close(zoom.y[i], expected.energy[s]), `zoomed energy at step ${s}`));
  await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
  await waitFor('zoom reset', () => page.evaluate((n) => {
    const u = window.__simtrack.charts.get('energy');
    return u.scales.x.min === 0 && u.scales.x.max === n - 1 && u.data[0].length === n;
  }, STEPS));
  // Metadata, tags and events are on the page too; events can be searched.
  assert.match(await page.textContent('#run-metadata'), /scheme\s*FTCS/);
  assert.match(await page.textContent('#events'), /initialised a hot spot/);
  await page.fill('#event-search', 'step 100 ');
  await waitFor('event search', async () => (await page.$$('#events tr')).length === 1);
  assert.match(await page.textContent('#events'), /step 100 residual/);
  await page.fill('#event-search', '');
  await waitFor('all events again', async () => (await page.$$('#events tr')).length > 1);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, 'run.png'), fullPage: true });
  // Other x-axes and a log scale redraw from the server's data.
  await page.selectOption('#xaxis', 'time');
  const t = await waitFor('time axis', () => page.evaluate((n) => {
    const u = window.__simtrack.charts.get('residual');
    return u && !u.scales.x.time && u.data[0].length === n && u.data[0][n - 1] > 0 ? Array.from(u.data[0]) : null;
  }, STEPS));
  assert.ok(t.every((v, i) => i === 0 || v >= t[i - 1]), 'time axis is ordered');
  await page.selectOption('#xaxis', 'timestamp');
  const ts = await waitFor('timestamp axis', () => page.evaluate(() => {
    const u = window.__simtrack.charts.get('residual');
    return u && u.scales.x.time ? u.data[0][0] : null;
  }));
  assert.ok(Math.abs(ts * 1000 - Date.now()) < 600000, 'timestamps are recent Unix seconds');
  await page.check('#logscale');
  await waitFor('log scale', () => page.evaluate(() => window.__simtrack.charts.get('residual')?.scales.y.distr === 3));
  await page.selectOption('#xaxis', 'step');
  await page.uncheck('#logscale');
});

test('a saved file downloads byte-identical', async () => {
  assert.ok(finished.id, 'needs the completed run');
  for (const name of ['heat_input.nml', 'heat_output.dat']) {
    const link = page.locator('#files a[data-testid=download]', { hasText: name });
    const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const path = join(scratch, 'dl-' + name);
    await dl.saveAs(path);
    assert.deepEqual(readFileSync(path), readFileSync(join(finished.work, name)), `${name} downloads byte-identical`);
  }
});

test('filtering by tag and by metadata finds the right runs', async () => {
  const mk = async (name, tags, metadata) => (await api('/api/runs', { method: 'POST', body: { name, tags, metadata, folder: '/ui-test/filters', status: 'completed' } })).body.id;
  const a = await mk('filter-a', ['ui-filter', 'coarse'], { nx: 32, solver: 'jacobi' });
  const b = await mk('filter-b', ['ui-filter', 'fine'], { nx: 256, solver: 'jacobi' });
  const c = await mk('filter-c', ['other'], { nx: 256, solver: 'gmres' });
  await page.goto(URL_ + '/#/runs');
  await page.waitForSelector('table#runs');
  const ids = async () => (await page.$$eval('table#runs tbody tr[data-run-id]', (rs) => rs.map((r) => r.dataset.runId))).sort();
  const expectRows = async (want, what) => {
    want = [...want].sort();
    await waitFor(what, async () => JSON.stringify(await ids()) === JSON.stringify(want)).catch(async (e) => {
      throw new Error(`${e.message}: rows ${JSON.stringify(await ids())}, address ${await page.evaluate(() => location.hash)}, message "${await page.textContent('#runs-msg')}"`);
    });
  };
  await page.fill('#f-tag', 'ui-filter');
  await expectRows([a, b], 'tag ui-filter → a, b');
  await page.fill('#f-meta', 'nx > 100');
  await expectRows([b], 'tag ui-filter and nx > 100 → b');
  await page.fill('#f-tag', '');
  await page.fill('#f-meta', 'solver == gmres');
  await expectRows([c], 'solver == gmres → c');
  await page.fill('#f-meta', 'nx == 64');
  const heatRuns = (await api('/api/runs?filters=' + q(['metadata.nx == 64']) + '&count=1000')).body.data.map((r) => r.id);
  assert.ok(heatRuns.includes(finished.id));
  await expectRows(heatRuns, 'nx == 64 → the heat runs');
  await page.fill('#f-meta', '');
  await page.fill('#f-tag', 'heat, example');
  await expectRows(heatRuns, 'tags heat, example → the heat runs');
  await page.waitForURL(/tag=heat/);
  // The filters live in the address, so a reload keeps them.
  await page.reload();
  await page.waitForSelector('table#runs tbody tr');
  assert.equal(await page.inputValue('#f-tag'), 'heat, example');
  await expectRows(heatRuns, 'filters kept across a reload');
  // Chosen metric columns show each run's last value.
  await page.fill('#f-cols', 'residual, energy');
  const cell = `tr[data-run-id="${finished.id}"] td[data-metric="energy"]`;
  await page.waitForSelector(cell);
  const last = heatSeries(STEPS).energy[STEPS - 1];
  assert.ok(Math.abs(parseFloat(await page.textContent(cell)) - last) < 1e-5 * last, 'last energy shown in the table');
  await page.fill('#f-tag', '');
  await page.fill('#f-cols', '');
});

test('Abort on the run page reaches the running example, which stops cleanly', async () => {
  const since = Date.now();
  const heat = startHeat(1000000, 2000);
  const run = await newHeatRun(since);
  await page.goto(URL_ + '/#/run/' + run.id);
  await page.waitForSelector('#run-status [data-testid=status]:text-is("running")');
  await waitFor('a live chart', () => page.evaluate(() => !!window.__simtrack.charts.get('residual')));
  // The chart follows the running solver without a reload.
  const lastStep = () => page.evaluate(() => { const x = window.__simtrack.charts.get('residual').data[0]; return x[x.length - 1]; });
  const s0 = await lastStep();
  await waitFor('the chart to grow', async () => (await lastStep()) > s0 + 100);
  const t0 = Date.now();
  await page.click('#abort');
  const { code, out } = await Promise.race([
    heat.done,
    new Promise((_, rej) => setTimeout(() => rej(new Error('heat did not stop within 30 s of Abort: ' + heat.output())), 30000)),
  ]);
  const stopSecs = (Date.now() - t0) / 1000;
  assert.equal(code, 0, out);
  assert.match(out, /finished after \d+ steps \(aborted\)/);
  await page.waitForSelector('#run-status [data-testid=status]:text-is("terminated")', { timeout: 15000 });
  const doc = (await api('/api/runs/' + run.id)).body;
  assert.equal(doc.status, 'terminated');
  assert.ok(doc.metadata.steps_done < 1000000);
  const events = (await api(`/api/events?run=${run.id}&count=0`)).body.data.map((e) => e.message);
  assert.ok(events.some((m) => m.includes('abort requested: stopping early')), 'the solver logged that it stopped');
  console.log(`# abort reached the solver and it exited after ${stopSecs.toFixed(1)} s`);
});

test('Create new run shows URL and a fresh token that works', async () => {
  await page.goto(URL_ + '/#/new');
  const me = (await api('/api/ui/whoami')).body.user;
  await page.waitForSelector('#token-user');
  assert.equal(await page.textContent('#token-user'), me, 'the token acts as the signed-in user');
  await page.click('#create-token');
  await waitFor('a new token in the snippets', async () => !(await page.textContent('#snippet-env')).includes(TOKEN));
  const env = await page.textContent('#snippet-env');
  const url = /export SIMTRACK_URL=(\S+)/.exec(env)[1];
  const tok = /export SIMTRACK_TOKEN=(\S+)/.exec(env)[1];
  assert.equal(url, URL_);
  assert.notEqual(tok, TOKEN);
  const ini = await page.textContent('#snippet-ini');
  assert.equal(ini, `[server]\nurl = ${URL_}\ntoken = ${tok}`);
  for (const id of ['#snippet-c', '#snippet-fortran', '#snippet-cmake']) assert.ok((await page.textContent(id)).length > 20);
  // The token works against the API, and a solver configured only by the
  // simtrack.ini from the page reports to this server under its name.
  assert.equal((await api('/api/runs?count=1', { token: tok })).status, 200);
  const dir = mkdtempSync(join(scratch, 'ini-'));
  writeFileSync(join(dir, 'simtrack.ini'), ini + '\n');
  const since = Date.now();
  const env2 = { ...process.env };
  delete env2.SIMTRACK_URL; delete env2.SIMTRACK_TOKEN;
  const r = await new Promise((resolve) => {
    const c = spawn(HEAT, ['50', dir], { cwd: dir, env: env2 });
    let o = ''; c.stdout.on('data', (d) => { o += d; }); c.stderr.on('data', (d) => { o += d; });
    c.on('exit', (code) => resolve({ code, o }));
  });
  assert.equal(r.code, 0, r.o);
  const run = await newHeatRun(since, tok);
  assert.equal(run.user, me);
  assert.equal(run.status, 'completed');
  await page.screenshot({ path: join(SHOTS, 'new-run.png'), fullPage: true });
});

test('compare, folders and alerts pages render the runs', async () => {
  const two = (await api('/api/runs?filters=' + q(['name == heat-c', 'status == completed']) + '&count=2')).body.data.map((r) => r.id);
  await page.goto(URL_ + '/#/runs');
  await page.waitForSelector('table#runs tbody tr');
  await page.fill('#f-meta', 'nx == 64');
  for (const id of two) await page.check(`tr[data-run-id="${id}"] input[type=checkbox]`);
  await page.click('#compare-selected');
  await page.waitForSelector('#metadata-diff');
  const series = await waitFor('overlay chart', () => page.evaluate(() => window.__simtrack.charts.get('compare')?.series.length));
  assert.equal(series, 3, 'one series per run plus x');
  assert.match(await page.textContent('#metadata-diff'), /metadata\.scheme/);
  await page.screenshot({ path: join(SHOTS, 'compare.png'), fullPage: true });

  await page.goto(URL_ + '/#/folders?path=' + encodeURIComponent('/examples/c'));
  await page.waitForSelector('#folder-detail h2');
  const detail = await page.textContent('#folder-detail');
  assert.match(detail, /Runs of the C heat example/);
  assert.match(detail, /owner\s*examples/);
  await page.screenshot({ path: join(SHOTS, 'folders.png'), fullPage: true });

  // A run whose alert fires is listed as critical, and its page shows the
  // alert's state and history.
  const alert = (await api('/api/alerts', { method: 'POST', body: { name: 'ui-too-hot', source: 'metrics', alert: { metric: 'temp', rule: 'is above', threshold: 0.5, window: 1, frequency: 1, aggregation: 'average' } } })).body.id;
  const hot = (await api('/api/runs', { method: 'POST', body: { name: 'ui-hot-run', alerts: [alert], folder: '/ui-test/alerts' } })).body.id;
  assert.equal((await api('/api/metrics', { method: 'POST', body: { run: hot, metrics: [{ step: 0, time: 0, values: { temp: 5 } }] } })).status, 200);
  await page.goto(URL_ + '/#/alerts');
  await page.waitForSelector('#alert-defs');
  assert.match(await page.textContent('#critical-runs'), /ui-hot-run/);
  await page.click('#critical-runs a:text-is("ui-hot-run")');
  await page.waitForSelector('#run-alerts .badge.critical');
  assert.match(await page.textContent('#run-alerts'), /ui-too-hot.*critical/s);
  await waitFor('alert history', async () => /changed from ok to critical/.test(await page.textContent('#run-alerts')));
  await page.goto(URL_ + '/#/alerts');
  await page.waitForSelector('#alert-defs');
  assert.match(await page.textContent('#alert-defs'), /residual-high/);
  assert.match(await page.textContent('#alert-defs'), /energy is outside range/);
  await page.screenshot({ path: join(SHOTS, 'alerts.png'), fullPage: true });
});

test('long names and many metrics do not break the layout', async () => {
  const name = 'very-long-run-name-'.repeat(11).slice(0, 200);
  const id = (await api('/api/runs', { method: 'POST', body: { name, tags: ['layout'], folder: '/ui-test/layout' } })).body.id;
  const names = Array.from({ length: 120 }, (_, i) => `m${String(i).padStart(3, '0')}`);
  const metrics = Array.from({ length: 20 }, (_, step) => ({ step, time: step, values: Object.fromEntries(names.map((n, k) => [n, Math.sin(step + k)])) }));
  // Metrics arrive as msgpack from solvers; the API also takes JSON.
  const r = await fetch(URL_ + '/api/metrics', { method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' }, body: JSON.stringify({ run: id, metrics }) });
  assert.equal(r.status, 200, await r.text());
  await page.goto(URL_ + '/#/run/' + id);
  await page.waitForSelector('#run-name');
  await waitFor('the first charts', () => page.evaluate(() => window.__simtrack.charts.size >= 60));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`);
  // The rest load as they are scrolled to.
  assert.ok(await page.evaluate(() => window.__simtrack.charts.size) < 120, 'charts far below wait');
  for (let k = 0; k < 30 && (await page.evaluate(() => window.__simtrack.charts.size)) < 120; k++) {
    await page.mouse.wheel(0, 2000);
    await new Promise((r) => setTimeout(r, 100));
  }
  await waitFor('all 120 charts after scrolling', () => page.evaluate(() => window.__simtrack.charts.size === 120));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.fill('#metric-filter', 'm11');
  await waitFor('filtered charts', async () => (await page.$$('.chart[data-metric]')).length === 10);
  await page.screenshot({ path: join(SHOTS, 'run-many-metrics.png'), fullPage: false });
  await page.goto(URL_ + '/#/runs?tag=layout');
  await page.waitForSelector(`tr[data-run-id="${id}"]`);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(wide <= 0, `runs page scrolls sideways by ${wide}px`);
  // Leaving a page while it still loads leaves nothing of it behind.
  await page.click(`tr[data-run-id="${id}"] td.name a`);
  await page.evaluate(() => { location.hash = '#/runs?tag=layout'; });
  await page.waitForSelector('table#runs');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await page.locator('#run-name, .chart').count(), 0, 'no run page parts on the runs page');
  assert.equal(await page.locator('table#runs').count(), 1);
  // Every run of this test session, with two metric columns.
  await page.goto(URL_ + '/#/runs?cols=residual,energy');
  await page.waitForSelector('table#runs td[data-metric="energy"]');
  await page.screenshot({ path: join(SHOTS, 'runs-all.png'), fullPage: true });
});

test('the page raised no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
