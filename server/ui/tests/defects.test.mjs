// Browser tests for the defects of issue 11 (each failed before its fix).
// Same environment as ui.test.mjs (scripts/test.d/30-ui.sh sets it up); runs
// made through the API (JSON bodies) unless the C library is the point.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { URL_, TOKEN, REPO, LIBDIR, SHOTS, api, q, waitFor, mkRun, postMetrics, steps, openBrowser } from './harness.mjs';

let browser, page, scratch, pageErrors;
before(async () => {
  browser = await openBrowser('simtrack-ui2-');
  ({ page, scratch, errors: pageErrors } = browser);
});
after(async () => { if (browser) await browser.close(); });


// A run logged by a C program linked to the library (as a solver sends it):
// `loop` is its body between simtrack_init and simtrack_finish; returns the
// run's id.
async function runFromC(name, loop) {
  const dir = mkdtempSync(join(scratch, name + '-'));
  writeFileSync(join(dir, 'solver.c'), `#include <math.h>
#include <simtrack.h>
int main(void) {
    simtrack_run *run = NULL;
    simtrack_init("${name}", NULL, NULL, NULL, "/ui2", &run);
    ${loop}
    return simtrack_finish(run) == SIMTRACK_STATUS_OK ? 0 : 1;
}
`);
  execFileSync('cc', ['-I' + join(REPO, 'include'), join(dir, 'solver.c'), '-L' + LIBDIR, '-lsimtrack', '-Wl,-rpath,' + LIBDIR, '-lm', '-o', join(dir, 'solver')]);
  execFileSync(join(dir, 'solver'), [], { env: { ...process.env, SIMTRACK_URL: URL_, SIMTRACK_TOKEN: TOKEN }, cwd: dir });
  return (await api('/api/runs?filters=' + q([`name == ${name}`]) + '&count=1')).body.data[0].id;
}

test('log-scale tick labels are whole and fit their axis', async () => {
  const id = await mkRun({ name: 'ui2-log' });
  await postMetrics(id, steps(200, (s) => ({ residual: 10 ** (-s / 20) })));
  await page.goto(URL_ + `/#/run/${id}?log=1`);
  await waitFor('the chart', () => page.evaluate(() => window.__simtrack.charts.has('residual')));
  const bad = await page.evaluate(() => {
    const u = window.__simtrack.charts.get('residual');
    const ax = u.axes[1];
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = ax.font[0];
    const room = ax._size - (ax.ticks.size || 10) - (ax.gap || 5);
    return (ax._values || []).filter((v) => v !== null && v !== '' && (ctx.measureText(v).width > room || !/^-?(\d+(\.\d+)?|\d(\.\d+)?e-?\d+)$/.test(v)));
  });
  assert.deepEqual(bad, [], 'labels that do not fit or are not numbers');
  await page.screenshot({ path: join(SHOTS, 'ui2-log.png') });
});

test('charts past the first 60 redraw after toggling log scale and x-axis', async () => {
  const id = await mkRun({ name: 'ui2-many' });
  const names = Array.from({ length: 80 }, (_, i) => `m${String(i).padStart(2, '0')}`);
  await postMetrics(id, steps(20, (s) => Object.fromEntries(names.map((n, k) => [n, 1 + Math.sin(s + k) ** 2]))));
  await page.goto(URL_ + `/#/run/${id}`);
  await waitFor('the first charts', () => page.evaluate(() => window.__simtrack.charts.size >= 60));
  await page.evaluate(() => document.querySelector('.chart[data-metric="m79"]').scrollIntoView());
  await waitFor('m79 drawn', () => page.evaluate(() => window.__simtrack.charts.has('m79')));
  // A toggle redraws every chart; the page's height changes meanwhile, so
  // bring m79 back into view: it must draw without scrolling away first.
  const again = async (what) => waitFor(what, () => page.evaluate(() => {
    document.querySelector('.chart[data-metric="m79"]').scrollIntoView();
    const u = window.__simtrack.charts.get('m79');
    return !!u && u.root.isConnected;
  }), 8000);
  await page.check('#logscale');
  await again('m79 drawn again after log');
  await page.selectOption('#xaxis', 'time');
  await again('m79 drawn again after x-axis');
  assert.equal(await page.evaluate(() => window.__simtrack.charts.get('m79').scales.x.max < 1), true, 'm79 shows time, not steps');
});

test('NaN and Inf are shown: markers with steps, legend and table say NaN/Inf', async () => {
  // From the C library, as a solver going NaN would send it.
  const id = await runFromC('ui2-nan', 'for (int s = 0; s < 100; s++) simtrack_log(run, "res", s < 80 ? 1.0 / (s + 1) : s == 90 ? INFINITY : NAN, s);');
  await page.goto(URL_ + `/#/run/${id}`);
  await waitFor('the chart', () => page.evaluate(() => window.__simtrack.charts.has('res')));
  const note = await page.textContent('.chart[data-metric="res"] [data-testid=nonfinite]');
  assert.match(note, /NaN/);
  assert.match(note, /\b80\b/, 'the first NaN step');
  assert.match(note, /Inf.*\b90\b/);
  const legend = await page.evaluate(() => { const u = window.__simtrack.charts.get('res'); u.setCursor({ left: u.valToPos(85, 'x'), top: 10 }); return u.root.querySelector('.u-series:nth-child(2) .u-value').textContent; });
  assert.equal(legend, 'NaN');
  await page.screenshot({ path: join(SHOTS, 'ui2-nan.png') });
  await page.goto(URL_ + '/#/runs?cols=res&q=ui2-nan');
  await page.waitForSelector(`tr[data-run-id="${id}"] td[data-metric="res"]`);
  assert.equal(await page.textContent(`tr[data-run-id="${id}"] td[data-metric="res"]`), 'NaN');
});

test('a live run page fetches only new events', async () => {
  const id = await mkRun({ name: 'ui2-events', status: 'running' });
  const ev = (msgs) => api('/api/events', { method: 'POST', body: { run: id, events: msgs.map((message) => ({ message })) } });
  await ev(Array.from({ length: 300 }, (_, i) => `old event ${i}`));
  const urls = [];
  const onReq = (r) => { if (r.url().includes('/api/events?')) urls.push(r.url()); };
  page.on('request', onReq);
  await page.goto(URL_ + `/#/run/${id}`);
  await waitFor('events', async () => /old event 299/.test(await page.textContent('#events')));
  await ev(['ERROR: diverged at step 7', 'traceback:\n  line one\n  line two']);
  await api(`/api/runs/${id}/heartbeat`, { method: 'PUT' });
  await waitFor('the new events', async () => /line two/.test(await page.textContent('#events')));
  page.off('request', onReq);
  const later = urls.slice(1).map((u) => new URL(u).searchParams);
  assert.ok(later.length >= 1);
  for (const p of later) assert.ok(+p.get('start') >= 300, `a refresh asked for start=${p.get('start')}`);
  // Levels from the message; line breaks kept.
  assert.equal(await page.getAttribute('#events tr:has-text("diverged")', 'class'), 'level-error');
  const text = await page.evaluate(() => [...document.querySelectorAll('#events td')].find((td) => td.textContent.startsWith('traceback')).innerText);
  assert.match(text, /traceback:\n\s+line one\n/);
});

test('a run with more events than the page keeps shows the newest and follows new ones', async () => {
  const id = await mkRun({ name: 'ui2-many-events', status: 'running' });
  const ev = (msgs) => api('/api/events', { method: 'POST', body: { run: id, events: msgs.map((message) => ({ message })) } });
  for (let b = 0; b < 5; b++) await ev(Array.from({ length: 5000 }, (_, i) => `many ${b * 5000 + i}`));
  const urls = [];
  const onReq = (r) => { if (r.url().includes('/api/events?')) urls.push(new URL(r.url()).searchParams); };
  page.on('request', onReq);
  await page.goto(URL_ + `/#/run/${id}`);
  await waitFor('the newest event', async () => /many 24999/.test(await page.textContent('#events')));
  assert.match(await page.textContent('body'), /the newest 10000 of 25000 events/);
  // A search covers every event, not only those on the page: "many 123"
  // matches 123, 1230-1239 and 12300-12399, all older than the newest 10,000.
  await page.fill('#event-search', 'MANY 123');
  await waitFor('the search', async () => /111 matching of all 25000 events/.test(await page.textContent('body')));
  assert.ok(/many 12399/.test(await page.textContent('#events')));
  assert.ok(!/many 24999/.test(await page.textContent('#events')));
  await page.screenshot({ path: join(SHOTS, 'ui2-many-events-search.png') });
  await page.fill('#event-search', '');
  await waitFor('the page again', async () => /many 24999/.test(await page.textContent('#events')));
  await ev(['the newest line']);
  await api(`/api/runs/${id}/heartbeat`, { method: 'PUT' });
  await waitFor('the new event', async () => /the newest line/.test(await page.textContent('#events')));
  page.off('request', onReq);
  // No request asked for everything, and none for more than the page keeps.
  for (const p of urls) assert.ok(+p.get('count') > 0 && +p.get('count') <= 10000, `asked for count=${p.get('count')}`);
  assert.ok(urls.some((p) => +p.get('start') === 15000), 'the newest 10,000 were fetched');
  await page.screenshot({ path: join(SHOTS, 'ui2-many-events.png') });
});

test('a lost run: duration ends at last contact, no Abort', async () => {
  const id = await mkRun({ name: 'ui2-lost', status: 'running', heartbeat_timeout: 1 });
  await waitFor('the run to be lost', async () => (await api('/api/runs/' + id)).body.status === 'lost', 10000);
  const a = (await api('/api/runs/' + id)).body.runtime;
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal((await api('/api/runs/' + id)).body.runtime, a, 'the duration stops');
  await page.goto(URL_ + `/#/run/${id}`);
  await page.waitForSelector('#run-status .badge.lost');
  assert.equal(await page.isVisible('#abort'), false, 'no Abort for a lost run');
});

test('compare: long names, distinct colours, a default metric every run has', async () => {
  const ids = [];
  for (let i = 0; i < 12; i++) {
    const name = i === 0 ? 'ui2-cmp-' + 'long-name-'.repeat(20) : `ui2-cmp-${i}`;
    const id = await mkRun({ name, metadata: { i } });
    await postMetrics(id, steps(10, (s) => (i === 0 ? { a_only: s, shared: s * i } : { shared: s * i + 1 })));
    ids.push(id);
  }
  await page.goto(URL_ + '/#/compare?ids=' + ids.join(','));
  await page.waitForSelector('#metadata-diff');
  await waitFor('the chart', () => page.evaluate(() => window.__simtrack.charts.has('compare')));
  assert.equal(await page.inputValue('#compare-metric'), 'shared');
  const colours = await page.evaluate(() => window.__simtrack.charts.get('compare').series.slice(1).map((s) => s._stroke || s.stroke()));
  assert.equal(new Set(colours).size, 12, 'twelve runs, twelve colours');
  const long = await page.locator('#metadata-diff thead th').nth(1).boundingBox();
  assert.ok(long.width <= 320, `the long name's column is ${long.width}px wide`);
  await page.screenshot({ path: join(SHOTS, 'ui2-compare.png'), fullPage: true });
});

test('comparison grid: synced crosshair and zoom, run toggles, smoothing, parameter plot', async () => {
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const id = await mkRun({ name: `ui2-grid-${i}`, metadata: { ui2nx: 32 * (i + 1), scheme: 'upwind' } });
    await postMetrics(id, steps(200, (s) => ({ 'residual/u': (i + 1) * Math.exp(-s / 50) + 0.1 * Math.sin(s), 'residual/v': i + Math.cos(s / 10) })));
    ids.push(id);
  }
  await page.goto(URL_ + '/#/compare?ids=' + ids.join(','));
  await waitFor('two charts', () => page.evaluate(() => window.__simtrack.charts.has('residual/u') && window.__simtrack.charts.has('residual/v')));
  assert.equal(await page.locator('#compare-grid .chart').count(), 2);
  const state = () => page.evaluate(() => {
    const [a, b] = ['residual/u', 'residual/v'].map((m) => window.__simtrack.charts.get(m));
    return { a: { idx: a.cursor.idx, min: a.scales.x.min, max: a.scales.x.max, show: a.series.map((s) => s.show), y: a.data[1].slice(0, 50) },
      b: { idx: b.cursor.idx, min: b.scales.x.min, max: b.scales.x.max, show: b.series.map((s) => s.show) }, series: a.series.length };
  });
  assert.equal((await state()).series, 4, 'x and one line per run');
  // Hover on one chart moves the other's crosshair.
  const box = await page.locator('#compare-grid .chart[data-metric="residual/u"] .u-over').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await waitFor('synced crosshair', async () => { const st = await state(); return st.a.idx != null && st.a.idx === st.b.idx; }, 3000);
  // Zoom one chart: the other follows.
  await page.evaluate(() => window.__simtrack.charts.get('residual/u').setScale('x', { min: 20, max: 80 }));
  let st = await state();
  assert.deepEqual([st.b.min, st.b.max], [20, 80]);
  // Hide a run everywhere.
  await page.uncheck(`#compare-runs input[data-run="${ids[1]}"]`);
  st = await state();
  assert.equal(st.a.show[2], false); assert.equal(st.b.show[2], false); assert.equal(st.a.show[1], true);
  // Smoothing replaces the line by its EMA; the raw line stays (faint).
  const raw = st.a.y;
  await page.fill('#compare-smooth', '0.9');
  await page.dispatchEvent('#compare-smooth', 'input');
  st = await state();
  assert.notDeepEqual(st.a.y, raw);
  assert.equal(await page.evaluate(() => window.__simtrack.charts.get('residual/u').__raw.length), 3);
  // Parameter plot: last value of residual/v against nx, one point per run.
  await page.selectOption('#param-key', 'ui2nx');
  await page.selectOption('#param-metric', 'residual/v');
  await page.selectOption('#param-stat', 'last');
  const pts = await page.evaluate(() => window.__simtrack.charts.get('param').data);
  assert.deepEqual(pts[0], [32, 64, 96]);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(pts[1][i] - (i + Math.cos(199 / 10))) < 1e-9);
  await page.screenshot({ path: join(SHOTS, 'ui2-compare-grid.png'), fullPage: true });
});

test('compare: a long series downsampled keeps its lone spike and shows its lone NaN', async () => {
  // 20,000 points from the C library (downsampled for the chart): one spike, one NaN.
  const ids = [await runFromC('ui2-long', 'for (int s = 0; s < 20000; s++) simtrack_log(run, "long", s == 12345 ? NAN : s == 7777 ? 1e6 : sin(s / 500.0), s);')];
  ids.push(await mkRun({ name: 'ui2-long-finite' }));
  await postMetrics(ids[1], steps(5000, (s) => ({ long: Math.cos(s / 500) })));
  await page.goto(URL_ + `/#/compare?ids=${ids.join(',')}&metrics=long`);
  await waitFor('the chart', () => page.evaluate(() => window.__simtrack.charts.has('long')));
  const got = await page.evaluate(() => {
    const u = window.__simtrack.charts.get('long');
    const ys = u.data[1].filter((v) => v != null);
    return { n: ys.length, max: Math.max(...ys), nan: [...u.__bad[0]].map(([i, kind]) => [u.data[0][i], kind]), nan1: u.__bad[1].size };
  });
  assert.ok(got.n < 20_000 && got.n > 200, `downsampled: ${got.n} points`);
  assert.equal(got.max, 1e6, 'the spike survives downsampling');
  assert.deepEqual(got.nan, [[12_345, 'NaN']], 'the NaN is marked at its step');
  assert.equal(got.nan1, 0);
});

test('runs table: metadata columns sorted on the server, metric min, page size and jump, CSV, filter language, saved views', async () => {
  const ids = {};
  for (const [name, nx, solver] of [['ui2-t-a', 64, 'jacobi'], ['ui2-t-b', 16, 'gmres'], ['ui2-t-c', 32, 'jacobi']]) {
    ids[name] = await mkRun({ name, tags: ['ui2-table'], metadata: { ui2nx: nx, ui2solver: solver } });
    await postMetrics(ids[name], steps(5, (s) => ({ res: nx - s })));
  }
  const names = () => page.$$eval('table#runs tbody tr[data-run-id] td.name', (tds) => tds.map((td) => td.textContent));
  await page.goto(URL_ + '/#/runs?tag=ui2-table&mcols=ui2nx,ui2solver&cols=res&stat=min');
  await page.waitForSelector('table#runs td[data-meta="ui2nx"]');
  await page.click('button[data-sort="metadata.ui2nx"]');
  await waitFor('sorted by nx ascending', async () => JSON.stringify(await names()) === JSON.stringify(['ui2-t-b', 'ui2-t-c', 'ui2-t-a']));
  await page.click('button[data-sort="metadata.ui2nx"]');
  await waitFor('sorted by nx descending', async () => JSON.stringify(await names()) === JSON.stringify(['ui2-t-a', 'ui2-t-c', 'ui2-t-b']));
  assert.equal(await page.textContent(`tr[data-run-id="${ids['ui2-t-a']}"] td[data-metric="res"]`), '60', 'min of res');
  // Metric columns sort on the server too (res min: a 60, b 12, c 28).
  await page.click('button[data-sort="metrics.res.min"]');
  await waitFor('sorted by res min ascending', async () => JSON.stringify(await names()) === JSON.stringify(['ui2-t-b', 'ui2-t-c', 'ui2-t-a']));
  await page.click('button[data-sort="metrics.res.min"]');
  await waitFor('sorted by res min descending', async () => JSON.stringify(await names()) === JSON.stringify(['ui2-t-a', 'ui2-t-c', 'ui2-t-b']));
  assert.match(page.url(), /sort=metrics\.res\.min/);
  // Page size and jump.
  await page.selectOption('#page-size', '25');
  await page.evaluate(() => { const u = new URL(location.href); u.hash = u.hash.replace('size=25', 'size=2'); });
  // CSV of the whole view.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  const csv = (await (await import('node:fs/promises')).readFile(await dl.path(), 'utf8')).trim().split(/\r?\n/);
  assert.equal(csv.length, 4, csv.join('\n'));
  assert.match(csv[0], /metadata\.ui2nx,metadata\.ui2solver,res\.min/);
  assert.ok(csv.some((l) => l.includes('ui2-t-b') && l.includes(',16,gmres,12')), csv.join('\n'));
  // Filter language: AND / OR / NOT, quoted values; errors shown.
  await page.fill('#f-where', 'metadata.ui2nx > 20 AND NOT metadata.ui2solver == "gmres"');
  await waitFor('where filter', async () => JSON.stringify((await names()).sort()) === JSON.stringify(['ui2-t-a', 'ui2-t-c']));
  await page.fill('#f-where', '(metadata.ui2nx == 16 OR metadata.ui2nx == 64) AND has tag.ui2-table');
  await waitFor('or filter', async () => JSON.stringify((await names()).sort()) === JSON.stringify(['ui2-t-a', 'ui2-t-b']));
  await page.fill('#f-where', 'metadata.ui2nx > 20 AND');
  await page.waitForSelector('#filter-error');
  assert.match(await page.textContent('#filter-error'), /filter/i);
  await page.fill('#f-where', 'metadata.ui2nx == 16');
  await waitFor('error gone', async () => (await page.locator('#filter-error').count()) === 0 && JSON.stringify(await names()) === JSON.stringify(['ui2-t-b']));
  // Saved view: name it, leave, come back through the list.
  await page.fill('#view-name', 'only b');
  await page.click('#save-view');
  await page.goto(URL_ + '/#/runs');
  await waitFor('the unfiltered page', async () => (await page.inputValue('#f-where')) === '' && (await page.inputValue('#f-mcols')) === '');
  await page.selectOption('#views', 'only b');
  await waitFor('the saved view', async () => JSON.stringify(await names()) === JSON.stringify(['ui2-t-b'])).catch(async (e) => {
    throw new Error(e.message + ' ' + JSON.stringify([await page.evaluate(() => location.hash + ' ' + localStorage.getItem('simtrack.views')), await names(), await page.textContent('#runs-msg'), await page.inputValue('#views')]));
  });
  assert.equal(await page.inputValue('#f-mcols'), 'ui2nx,ui2solver');
  // Page size 2 and jump to page 2 of the three runs.
  await page.fill('#f-where', '');
  await page.selectOption('#page-size', '25');
  await waitFor('three runs', async () => (await names()).length === 3);
  await page.goto(URL_ + '/#/runs?tag=ui2-table&sort=name&desc=0&size=25');
  await page.waitForSelector('table#runs tbody tr[data-run-id]');
  await page.fill('#page-jump', '1');
  await page.dispatchEvent('#page-jump', 'change');
  await page.check('#select-all');
  assert.equal(await page.textContent('#compare-selected'), 'Compare selected (3)');
  await page.screenshot({ path: join(SHOTS, 'ui2-runs-table.png'), fullPage: true });
});

test('run management: edit, star, move, delete one and many with the data gone', async () => {
  const id = await mkRun({ name: 'ui2-manage', tags: ['a'] });
  await postMetrics(id, steps(10, (s) => ({ r: s })));
  await api('/api/events', { method: 'POST', body: { run: id, events: [{ message: 'hello' }] } });
  await page.goto(URL_ + '/#/run/' + id);
  await page.waitForSelector('#run-name');
  await page.click('#edit-run');
  await page.fill('#edit-name', 'ui2-managed');
  await page.fill('#edit-tags', 'x, y');
  await page.fill('#edit-folder', '/ui2/moved');
  await page.click('#edit-save');
  await waitFor('renamed', async () => (await page.textContent('#run-name')) === 'ui2-managed');
  let doc = (await api('/api/runs/' + id)).body;
  assert.deepEqual([doc.name, doc.tags, doc.folder], ['ui2-managed', ['x', 'y'], '/ui2/moved']);
  await page.click('#star');
  await waitFor('starred', async () => (await api('/api/runs/' + id)).body.starred === true);
  // Bulk: this run and another, from the runs table.
  const other = await mkRun({ name: 'ui2-manage-2', folder: '/ui2/moved' });
  await postMetrics(other, steps(10, (s) => ({ r: s })));
  const dialogs = [];
  const onDialog = (d) => dialogs.push(d.message());
  page.on('dialog', onDialog);
  await page.goto(URL_ + '/#/runs?folder=/ui2/moved');
  await page.waitForSelector(`tr[data-run-id="${other}"]`);
  await page.check('#select-all');
  await page.click('#delete-selected');
  await waitFor('rows gone', async () => (await page.locator(`tr[data-run-id="${id}"], tr[data-run-id="${other}"]`).count()) === 0);
  page.off('dialog', onDialog);
  assert.match(dialogs.join(' '), /Delete 2 runs\? This removes 20 metric points, \d+ events/);
  for (const x of [id, other]) {
    assert.equal((await api('/api/runs/' + x)).status, 404);
    const m = await api('/api/metrics?runs=' + q([x]) + '&metrics=' + q(['r']) + '&xaxis=step');
    assert.ok(m.status === 404 || JSON.stringify(m.body) === '{}' || !(m.body[x] && m.body[x].r && m.body[x].r.length), JSON.stringify(m.body));
    assert.equal((await api('/api/events?run=' + x)).status, 404);
  }
});

test('a metric downloads as CSV at full resolution', async () => {
  const id = await mkRun({ name: 'ui2-csv' });
  await postMetrics(id, steps(3000, (s) => ({ r: Math.sin(s / 100) })));
  await page.goto(URL_ + '/#/run/' + id);
  await waitFor('the chart', () => page.evaluate(() => window.__simtrack.charts.has('r')));
  assert.ok(await page.evaluate(() => window.__simtrack.charts.get('r').data[0].length) < 3000, 'the chart is downsampled');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('button[data-csv="r"]')]);
  const lines = (await (await import('node:fs/promises')).readFile(await dl.path(), 'utf8')).trim().split(/\r?\n/);
  assert.equal(lines[0], 'step,time,timestamp,value');
  assert.equal(lines.length, 3001);
  const last = lines[3000].split(',');
  assert.equal(+last[0], 2999);
  assert.ok(Math.abs(+last[3] - Math.sin(29.99)) < 1e-12);
});

test('run page: metrics grouped by prefix, collapsible', async () => {
  const id = await mkRun({ name: 'ui2-groups' });
  await postMetrics(id, steps(10, (s) => ({ 'residual/u': s, 'residual/v': s, 'probe/p1': s, energy: s })));
  await page.goto(URL_ + '/#/run/' + id);
  await waitFor('charts', () => page.evaluate(() => window.__simtrack.charts.size >= 4));
  assert.equal(await page.locator('details.group[data-group="residual"] .chart').count(), 2);
  assert.equal(await page.locator('details.group[data-group="probe"] .chart').count(), 1);
  assert.equal(await page.locator('div.group[data-group=""] .chart[data-metric="energy"]').count(), 1);
  await page.click('details.group[data-group="residual"] > summary');
  assert.equal(await page.isVisible('.chart[data-metric="residual/u"]'), false, 'collapsed');
  assert.equal(await page.isVisible('.chart[data-metric="probe/p1"]'), true);
});

test('browser history follows filter changes', async () => {
  await page.goto(URL_ + '/#/runs?tag=ui2-table');
  await page.waitForSelector('table#runs tbody tr[data-run-id]');
  await page.selectOption('#f-status', 'completed');
  await page.waitForURL(/status=completed/);
  await page.click('button[data-sort="name"]');
  await page.waitForURL(/sort=name/);
  await page.goBack();
  await waitFor('back to the status filter', async () => /status=completed/.test(page.url()) && !/sort=name/.test(page.url()) && (await page.inputValue('#f-status')) === 'completed' && (await page.getAttribute('button[data-sort="name"]', 'aria-sort')) === null);
  await page.goBack();
  await waitFor('back to no status', async () => !/status=/.test(page.url()) && (await page.inputValue('#f-status')) === '');
  await page.goForward();
  await waitFor('forward again', async () => (await page.inputValue('#f-status')) === 'completed');
});

test('folders are hierarchical', async () => {
  const id = await mkRun({ name: 'ui2-deep', folder: '/ui2cfd/airfoil' });
  for (const f of ['/ui2cfd', '/ui2cfd/']) {
    await page.goto(URL_ + '/#/runs?folder=' + encodeURIComponent(f));
    await page.waitForSelector(`tr[data-run-id="${id}"]`, { timeout: 5000 });
  }
  await page.goto(URL_ + '/#/folders?path=/ui2cfd');
  await page.waitForSelector('#folder-detail h2');
  assert.match(await page.textContent('#folder-detail'), /Runs in this folder and below \(1\)/);
});

test('name search ignores case; quoted metadata values match', async () => {
  const id = await mkRun({ name: 'UI2-MixedCase', metadata: { ui2solver: 'Euler' } });
  await page.goto(URL_ + '/#/runs?q=ui2-mixedcase');
  await page.waitForSelector(`tr[data-run-id="${id}"]`, { timeout: 5000 });
  await page.goto(URL_ + '/#/runs?meta=' + encodeURIComponent('ui2solver == "Euler"'));
  await page.waitForSelector(`tr[data-run-id="${id}"]`, { timeout: 5000 });
});

test('time ticks differ over short spans; timestamps are ISO', async () => {
  const id = await mkRun({ name: 'ui2-time' });
  await postMetrics(id, steps(50, (s) => ({ r: s })));
  await page.goto(URL_ + `/#/run/${id}?x=time`);
  await waitFor('the chart', () => page.evaluate(() => window.__simtrack.charts.has('r')));
  const ticks = await page.evaluate(() => window.__simtrack.charts.get('r').axes[0]._values.filter(Boolean));
  assert.ok(ticks.length >= 3);
  assert.equal(new Set(ticks).size, ticks.length, `time ticks ${ticks}`);
  await page.selectOption('#xaxis', 'timestamp');
  await waitFor('timestamp chart', () => page.evaluate(() => { const u = window.__simtrack.charts.get('r'); return u && u.scales.x.time; }));
  const ts = await page.evaluate(() => window.__simtrack.charts.get('r').axes[0]._values.filter(Boolean));
  for (const t of ts) assert.match(t, /^(\d{4}-\d\d-\d\d( \d\d:\d\d(:\d\d)?)?|\d\d:\d\d(:\d\d(\.\d+)?)?|:\d\d(\.\d+)?|\.\d+)$/, `tick ${t}`);
});

test('Create new run reuses a token and shows C and Fortran that compile', async () => {
  const count = async () => (await api('/api/ui/tokens')).body.length;
  const before = await count();
  await page.goto(URL_ + '/#/new');
  await page.waitForSelector('#snippet-c');
  await page.goto(URL_ + '/#/runs');
  await page.goto(URL_ + '/#/new');
  await page.waitForSelector('#snippet-c');
  assert.equal(await count(), before, 'no token minted by opening the page');
  const c = await page.textContent('#snippet-c');
  assert.match(c, /int main/);
  assert.match(await page.textContent('#snippet-build'), /-lsimtrack/);
  const dir = mkdtempSync(join(scratch, 'snip-'));
  writeFileSync(join(dir, 'my_solver.c'), c);
  execFileSync('cc', ['-Wall', '-Werror', '-I' + join(REPO, 'include'), join(dir, 'my_solver.c'), '-L' + LIBDIR, '-lsimtrack', '-lm', '-o', join(dir, 'a.out')]);
  const f = await page.textContent('#snippet-fortran');
  assert.match(f, /program /);
  writeFileSync(join(dir, 'my_solver.f90'), f);
  execFileSync('gfortran', ['-c', '-J' + dir, join(REPO, 'fortran/simtrack_c.f90'), '-o', join(dir, 'c.o')]);
  execFileSync('gfortran', ['-c', '-J' + dir, '-I' + dir, join(REPO, 'fortran/simtrack.f90'), '-o', join(dir, 'm.o')]);
  execFileSync('gfortran', ['-I' + dir, join(dir, 'my_solver.f90'), join(dir, 'm.o'), join(dir, 'c.o'), '-L' + LIBDIR, '-lsimtrack', '-o', join(dir, 'f.out')]);
});

test('/dashboard/runs/run/<id> leads to the run page', async () => {
  const id = await mkRun({ name: 'ui2-dashboard' });
  await page.goto(URL_ + '/dashboard/runs/run/' + id);
  await page.waitForSelector('#run-name');
  assert.equal(await page.textContent('#run-name'), 'ui2-dashboard');
});

test('phone width: a slim header, readable table columns', async () => {
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto(URL_ + '/#/runs');
  await page.waitForSelector('table#runs tbody tr');
  const head = await page.locator('header#top').boundingBox();
  assert.ok(head.height <= 110, `header is ${head.height}px high`);
  const narrow = await page.evaluate(() => [...document.querySelectorAll('table#runs tbody tr:first-child td')].map((td) => td.getBoundingClientRect().width).filter((w) => w < 24 ));
  assert.deepEqual(narrow, [], 'collapsed columns');
  await page.screenshot({ path: join(SHOTS, 'ui2-phone.png') });
  await page.setViewportSize({ width: 1440, height: 900 });
});

test('dark mode follows the system setting, charts included', async () => {
  const id = await mkRun({ name: 'ui2-dark' });
  await postMetrics(id, steps(20, (s) => ({ r: s })));
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(URL_ + '/#/run/' + id);
  await waitFor('the chart', () => page.evaluate(() => window.__simtrack.charts.has('r')));
  const [bg, axis] = await page.evaluate(() => { const u = window.__simtrack.charts.get('r'); const st = u.axes[1].stroke; return [getComputedStyle(document.documentElement).backgroundColor, typeof st === 'function' ? st(u, 1) : st]; });
  const lum = (c) => { const m = c.match(/\d+/g).map(Number); return (m[0] + m[1] + m[2]) / 3; };
  assert.ok(lum(bg) < 60, `background ${bg}`);
  assert.equal(axis, '#98a3b5', 'axis text in the dark theme\'s colour');
  await page.screenshot({ path: join(SHOTS, 'ui2-dark.png') });
  await page.emulateMedia({ colorScheme: 'light' });
});

test('no script errors', () => { assert.deepEqual(pageErrors, []); });
