// Browser tests of the UI features of issue 11 beyond its listed defects:
// colour by metadata and parallel coordinates on Compare, the not-found
// pages, run-page tabs and file previews. Same environment as
// ui.test.mjs (scripts/test.d/30-ui.sh sets it up).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { URL_, SHOTS, api, waitFor, mkRun, postMetrics, steps, openBrowser } from './harness.mjs';

let browser, page;
before(async () => { browser = await openBrowser('simtrack-ui3-', / (401|404|422) /); ({ page } = browser); });
after(async () => { if (browser) await browser.close(); });

test('compare colours runs by a metadata key and draws parallel coordinates that brush', async () => {
  const ids = [];
  for (const [i, nu] of [0.1, 0.2, 0.4, 0.8].entries()) {
    ids.push(await mkRun({ name: `pc-${i}`, metadata: { nu, scheme: i % 2 ? 'upwind' : 'central' } }, '/ui3'));
    await postMetrics(ids[i], steps(20, (s) => ({ residual: nu * 10 ** (-s / 10) })));
  }
  await page.goto(URL_ + `/#/compare?ids=${ids.join(',')}&metrics=residual`);
  await waitFor('the parallel plot', () => page.evaluate(() => window.__simtrack.parallel?.runs.length === 4));
  const pc = await page.evaluate(() => window.__simtrack.parallel);
  assert.deepEqual(pc.axes, ['metadata.nu', 'metadata.scheme', 'residual.last']);
  // Each run's line goes through its own values.
  for (const [i, nu] of [0.1, 0.2, 0.4, 0.8].entries()) {
    const line = pc.runs.find((x) => x.id === ids[i]);
    assert.equal(line.values[0], nu);
    assert.equal(line.values[1], i % 2 ? 'upwind' : 'central');
    assert.ok(Math.abs(line.values[2] - nu * 10 ** (-19 / 10)) < 1e-12 * nu);
  }
  // Brush the upper part of the nu axis (0.8 down to about 0.35): the runs with nu 0.4 and 0.8 stay.
  const axis = page.locator('#parallel-plot g.axis[data-axis="metadata.nu"] rect').last();
  await axis.scrollIntoViewIfNeeded();
  const box = await axis.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.65, { steps: 4 });
  await page.mouse.up();
  const brushed = await waitFor('the brush', () => page.evaluate(() => window.__simtrack.parallel.brushes['metadata.nu'] && window.__simtrack.parallel));
  assert.deepEqual(brushed.runs.filter((x) => x.match).map((x) => x.id).sort(), [ids[2], ids[3]].sort());
  assert.match(await page.textContent('#parallel-count'), /^2 of 4 runs/);

  // Colour by nu: the chart lines take the scale's colours, ordered by nu,
  // and the same colours draw the parallel lines and the legend.
  await page.selectOption('#compare-colour', 'nu');
  const strokes = await waitFor('strokes', () => page.evaluate(() => {
    const u = window.__simtrack.charts.get('compare');
    const s = u.series.slice(1).map((x) => (typeof x.stroke === 'function' ? x.stroke(u, 1) : x.stroke));
    return s.every((c) => c.startsWith('rgb(')) && s;
  }));
  assert.equal(new Set(strokes).size, 4, `distinct colours: ${strokes}`);
  assert.equal(strokes[0], 'rgb(33, 49, 140)', 'lowest nu takes the start of the scale');
  assert.equal(strokes[3], 'rgb(215, 160, 0)', 'highest nu takes the end of the scale');
  const lineColours = await page.evaluate((ids) => ids.map((i) => document.querySelector(`#parallel-plot path[data-run="${i}"]`).getAttribute('stroke')), ids);
  assert.deepEqual(lineColours, strokes);
  assert.match(page.url(), /colour=nu/);
  // A categorical key: one colour per value.
  await page.selectOption('#compare-colour', 'scheme');
  const cats = await waitFor('categorical strokes', () => page.evaluate(() => {
    const u = window.__simtrack.charts.get('compare');
    const s = u.series.slice(1).map((x) => (typeof x.stroke === 'function' ? x.stroke(u, 1) : x.stroke));
    return !s[0].startsWith('rgb(') && s;
  }));
  assert.equal(cats[0], cats[2]);
  assert.equal(cats[1], cats[3]);
  assert.notEqual(cats[0], cats[1]);
  await page.screenshot({ path: join(SHOTS, 'ui3-parallel.png'), fullPage: true });
});

test('run page tabs show one section each, follow the address and Back', async () => {
  const id = await mkRun({ name: 'tabs', metadata: { nx: 65 } }, '/ui3');
  await postMetrics(id, steps(10, (s) => ({ residual: 1 / (s + 1), 'resources/cpu.usage.percentage': 50 + s })));
  await api(`/api/events`, { method: 'POST', body: { run: id, events: [{ timestamp: new Date().toISOString().replace('Z', ''), message: 'hello tabs' }] } });
  await page.goto(URL_ + `/#/run/${id}`);
  await waitFor('overview charts', () => page.evaluate(() => window.__simtrack.charts.has('residual')));
  const visible = () => page.evaluate(() => [...document.querySelectorAll('section.run-section')].filter((s) => !s.hidden).map((s) => s.dataset.tab));
  assert.deepEqual(await visible(), ['overview', 'metrics', 'files', 'alerts', 'events']);
  await page.click('#tab-events');
  assert.deepEqual(await visible(), ['events']);
  assert.match(page.url(), /tab=events/);
  await waitFor('the event', async () => /hello tabs/.test(await page.textContent('#events')));
  await page.screenshot({ path: join(SHOTS, 'ui3-tab-events.png') });
  await page.click('#tab-system');
  assert.deepEqual(await visible(), ['system']);
  await page.goBack();
  await waitFor('back to events', async () => JSON.stringify(await visible()) === '["events"]');
  // The address alone opens a tab; a chart hidden at load draws when shown.
  await page.goto(URL_ + `/#/run/${id}?tab=files`);
  await waitFor('files tab', async () => JSON.stringify(await visible()) === '["files"]');
  await page.click('#tab-metrics');
  await waitFor('chart drawn in the metrics tab', () => page.evaluate(() => { const u = window.__simtrack.charts.get('residual'); return u && u.width > 100; }));
  assert.equal(await page.getAttribute('#tab-metrics', 'aria-selected'), 'true');
});

test('a run, a page or an address that does not exist gets a real not-found page', async () => {
  await page.goto(URL_ + '/#/run/no-such-run-id');
  await waitFor('run not found', () => page.evaluate(() => window.__simtrack.notFound));
  assert.equal(await page.textContent('#not-found h1'), 'Run not found');
  assert.match(await page.textContent('#not-found'), /no-such-run-id/);
  await page.goto(URL_ + '/#/nowhere');
  await waitFor('page not found', async () => (await page.textContent('#not-found h1').catch(() => '')) === 'Page not found');
  // Outside the UI: a browser gets an HTML 404 with a way back, a program JSON.
  const res = await page.goto(URL_ + '/no/such/page');
  assert.equal(res.status(), 404);
  assert.equal(await page.textContent('h1'), 'Page not found');
  assert.equal(await page.getAttribute('a.button.primary', 'href'), '/#/runs');
  const api404 = await fetch(URL_ + '/no/such/page');
  assert.equal(api404.status, 404);
  assert.match(api404.headers.get('content-type'), /json/);
});

test('alerts are created, edited, disabled and deleted in the UI; an ended run is not critical now', async () => {
  await page.goto(URL_ + '/#/alerts');
  await page.click('#new-alert');
  await page.fill('#alert-name', 'ui3-diverged');
  await page.fill('#alert-metric', 'residual');
  await page.selectOption('#alert-rule', 'is outside range');
  await page.fill('#alert-low', '0');
  await page.fill('#alert-high', '2');
  await page.fill('#alert-window', '1');
  await page.check('#alert-abort');
  await page.click('#alert-save');
  await page.waitForSelector('#alert-defs tr:has-text("ui3-diverged")');
  const find = async () => (await api('/api/alerts?count=10000')).body.data.find((a) => a.name === 'ui3-diverged');
  let a = await find();
  assert.equal(a.source, 'metrics');
  assert.equal(a.abort, true);
  assert.equal(a.enabled, true);
  assert.deepEqual([a.alert.metric, a.alert.rule, a.alert.range_low, a.alert.range_high, a.alert.window], ['residual', 'is outside range', 0, 2, 1]);
  // A bad definition is refused with the server's reason, nothing stored.
  await page.click(`#alert-defs tr[data-alert="${a.id}"] [data-action=edit]`);
  await page.fill('#alert-high', '-1');
  await page.click('#alert-save');
  await waitFor('the refusal', async () => /range_low/.test(await page.textContent('#alert-form')));
  assert.equal((await find()).alert.range_high, 2);
  await page.fill('#alert-high', '5');
  await page.click('#alert-save');
  await waitFor('the edit stored', async () => (await find()).alert.range_high === 5);
  await page.waitForSelector(`#alert-defs tr[data-alert="${a.id}"] [data-action=toggle]`);
  await page.click(`#alert-defs tr[data-alert="${a.id}"] [data-action=toggle]`);
  await waitFor('disabled', async () => (await find()).enabled === false);

  // Critical now lists running runs only.
  const hot = await api('/api/alerts', { method: 'POST', body: { name: 'ui3-hot', source: 'metrics', alert: { metric: 'temp', rule: 'is above', threshold: 1, window: 1, frequency: 1 } } });
  const live = (await api('/api/runs', { method: 'POST', body: { name: 'ui3-hot-live', alerts: [hot.body.id], folder: '/ui3' } })).body.id;
  const ended = (await api('/api/runs', { method: 'POST', body: { name: 'ui3-hot-ended', alerts: [hot.body.id], folder: '/ui3' } })).body.id;
  for (const id of [live, ended]) await postMetrics(id, [{ step: 0, time: 0, values: { temp: 9 } }]);
  assert.equal((await api(`/api/runs/${ended}`, { method: 'PUT', body: { status: 'completed' } })).status, 200);
  await page.goto(URL_ + '/#/alerts?again=1');
  await page.waitForSelector('#critical-runs');
  const critical = await page.textContent('#critical-runs');
  assert.match(critical, /ui3-hot-live/);
  assert.doesNotMatch(critical, /ui3-hot-ended/);
  await page.screenshot({ path: join(SHOTS, 'ui3-alerts.png'), fullPage: true });

  await page.click(`#alert-defs tr[data-alert="${a.id}"] [data-action=delete]`);
  await waitFor('deleted', async () => (await find()) === undefined);
});

test('archiving runs hides them from the runs table and keeps their data; unarchive brings them back', async () => {
  const ids = [];
  for (const k of [0, 1, 2]) {
    ids.push(await mkRun({ name: `arch-${k}`, tags: ['ui3-arch'] }, '/ui3'));
    await postMetrics(ids[k], steps(4, (s) => ({ x: s + k })));
  }
  const names = () => page.$$eval('table#runs tbody tr[data-run-id] td.name', (tds) => tds.map((td) => td.textContent).sort());
  await page.goto(URL_ + '/#/runs?tag=ui3-arch');
  await waitFor('three runs', async () => (await names()).length === 3);
  for (const id of ids.slice(0, 2)) await page.check(`tr[data-run-id="${id}"] input[type=checkbox]`);
  await page.click('#archive-selected');
  await waitFor('two archived', async () => JSON.stringify(await names()) === '["arch-2"]');
  for (const id of ids.slice(0, 2)) {
    const run = (await api(`/api/runs/${id}`)).body;
    assert.ok(run.tags.includes('archived') && run.tags.includes('ui3-arch'), JSON.stringify(run.tags));
    assert.equal(run.metrics.x.count, 4, 'data kept');
  }
  await page.check('#f-archived');
  await waitFor('archived shown', async () => (await names()).length === 3);
  assert.match(page.url(), /archived=1/);
  await page.goto(URL_ + `/#/run/${ids[0]}`);
  await waitFor('unarchive button', async () => (await page.textContent('#archive-run')) === 'Unarchive');
  await page.click('#archive-run');
  await waitFor('unarchived', async () => !(await api(`/api/runs/${ids[0]}`)).body.tags.includes('archived'));
  await page.goto(URL_ + '/#/runs?tag=ui3-arch');
  await waitFor('two in the table', async () => JSON.stringify(await names()) === '["arch-0","arch-2"]');
});

test('a token stored while the first sign-in check is out is not signed out by its answer', async () => {
  const tok = await page.evaluate(() => localStorage.getItem('simtrack.token'));
  await page.evaluate(() => localStorage.removeItem('simtrack.token'));
  // A fresh page whose check, made without a token, answers (401) only
  // after the token is stored.
  await page.route('**/api/ui/whoami', async (r) => { await new Promise((ok) => setTimeout(ok, 700)); await r.continue(); });
  await page.goto('about:blank');
  await page.goto(URL_ + '/#/runs?race=1');
  await page.evaluate((t) => localStorage.setItem('simtrack.token', t), tok);
  await page.goto(URL_ + '/#/runs?race=2');
  await page.waitForSelector('table#runs');
  await page.waitForTimeout(1000);
  await page.unroute('**/api/ui/whoami');
  assert.equal(await page.evaluate(() => localStorage.getItem('simtrack.token')), tok, 'the token is kept');
  assert.equal(await page.isVisible('table#runs'), true);
});

test('the page raised no script errors', () => { assert.deepEqual(browser.errors, []); });
