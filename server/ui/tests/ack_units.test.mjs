// Browser tests of the rest of issue 11: acknowledging alerts (Alerts page
// and the run page's Alerts tab), units on chart axes and in tables (from
// the C library's simtrack_metric_unit and the simvue client's metadata),
// and the System tab's resource charts. Same environment as ui.test.mjs
// (scripts/test.d/30-ui.sh sets it up).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { URL_, TOKEN, REPO, LIBDIR, SHOTS, api, q, waitFor, postMetrics, steps, openBrowser } from './harness.mjs';

let browser, page;
before(async () => { browser = await openBrowser('simtrack-ui4-'); ({ page } = browser); });
after(async () => { if (browser) await browser.close(); });

test('a critical alert is acknowledged on the Alerts page and on the run page; it stays listed, apart from critical now', async () => {
  const alert = (await api('/api/alerts', { method: 'POST', body: { name: 'ui4-operator', source: 'user' } })).body.id;
  const mk = async (name) => (await api('/api/runs', { method: 'POST', body: { name, status: 'running', folder: '/ui4', alerts: [alert] } })).body.id;
  const [a, b] = [await mk('ui4-ack-here'), await mk('ui4-ack-there')];
  const set = async (run, status) => assert.equal((await api(`/api/alerts/${alert}/status/${run}`, { method: 'PUT', body: { status } })).status, 200);
  await set(a, 'critical');
  await set(b, 'critical');
  const ackOf = async (run) => (await api(`/api/runs/${run}`)).body.alerts.find((x) => x.alert.id === alert).acknowledged;

  await page.goto(URL_ + '/#/alerts');
  await page.waitForSelector(`#critical-runs tr[data-run="${a}"]`);
  assert.equal(await page.locator('#acknowledged-runs').count(), 0);
  await page.click(`#critical-runs tr[data-run="${a}"] [data-action=acknowledge]`);
  await page.waitForSelector(`#acknowledged-runs tr[data-run="${a}"]`);
  assert.equal(await page.locator(`#critical-runs tr[data-run="${a}"]`).count(), 0, 'no longer critical now');
  assert.match(await page.textContent(`#acknowledged-runs tr[data-run="${a}"]`), /ui4-operator\s+acknowledged by \S+/);
  assert.ok(await page.locator(`#critical-runs tr[data-run="${b}"]`).count(), 'the other run is still critical now');
  assert.equal((await ackOf(a)).by.length > 0, true);
  assert.equal((await api(`/api/alerts/${alert}/status/${a}`)).body.status, 'critical', 'acknowledged, still critical');
  await page.screenshot({ path: join(SHOTS, 'ui4-alerts-ack.png'), fullPage: true });

  // The run page's Alerts tab.
  await page.goto(URL_ + `/#/run/${b}?tab=alerts`);
  await page.waitForSelector('#run-alerts [data-action=acknowledge]');
  await page.click('#run-alerts [data-action=acknowledge]');
  await page.waitForSelector('#run-alerts .ack');
  assert.match(await page.textContent('#run-alerts'), /acknowledged by/);
  assert.ok(await ackOf(b));
  await waitFor('the history line', async () => /acknowledged by/.test(await page.textContent('#run-alerts ul')), 10000);
  await page.screenshot({ path: join(SHOTS, 'ui4-run-alerts-ack.png'), fullPage: true });

  // It clears and fires again: critical now once more, with a button.
  await set(a, 'ok');
  await set(a, 'critical');
  assert.equal(await ackOf(a), null);
  await page.goto(URL_ + '/#/alerts?again=1');
  await page.waitForSelector(`#critical-runs tr[data-run="${a}"] [data-action=acknowledge]`);
  assert.equal(await page.locator(`#acknowledged-runs tr[data-run="${a}"]`).count(), 0);
  for (const run of [a, b]) await api(`/api/runs/${run}`, { method: 'PUT', body: { status: 'completed' } });
});

test('units from the C library and the simvue client label chart axes, Compare and runs-table columns', async () => {
  const dir = mkdtempSync(join(browser.scratch, 'units-'));
  writeFileSync(join(dir, 'units.c'), `#include <simtrack.h>
int main(void) {
    simtrack_run *run = NULL;
    if (simtrack_init("ui4-units-c", NULL, NULL, NULL, "/ui4", &run) != SIMTRACK_STATUS_OK) return 1;
    if (simtrack_metric_unit(run, "velocity", "m/s") != SIMTRACK_STATUS_OK) return 2;
    if (simtrack_metric_unit(run, "temperature", "K") != SIMTRACK_STATUS_OK) return 3;
    if (simtrack_metric_unit(run, "bad\\nname", "K") != SIMTRACK_STATUS_INVALID_ARGUMENT) return 4;
    for (int s = 0; s < 20; s++) {
        simtrack_log(run, "velocity", 2.0 * s, s);
        simtrack_log(run, "temperature", 300.0 + s, s);
    }
    return simtrack_finish(run) == SIMTRACK_STATUS_OK ? 0 : 5;
}
`);
  execFileSync('cc', ['-Wall', '-Werror', '-I' + join(REPO, 'include'), join(dir, 'units.c'), '-L' + LIBDIR, '-lsimtrack', '-Wl,-rpath,' + LIBDIR, '-o', join(dir, 'units')]);
  execFileSync(join(dir, 'units'), [], { env: { ...process.env, SIMTRACK_URL: URL_, SIMTRACK_TOKEN: TOKEN }, cwd: dir });
  const c = (await api('/api/runs?filters=' + q(['name == ui4-units-c']) + '&count=1')).body.data[0];
  assert.deepEqual([c.metadata.simvue.metrics.velocity.units, c.metadata.simvue.metrics.temperature.units], ['m/s', 'K'], 'both units kept');
  // As the simvue client (set_metric_units) sends them: one metadata update per log.
  const py = (await api('/api/runs', { method: 'POST', body: { name: 'ui4-units-py', status: 'completed', folder: '/ui4' } })).body.id;
  for (const [name, units] of [['velocity', 'm/s'], ['temperature', 'degC']]) {
    const r = await api(`/api/runs/${py}`, { method: 'PUT', body: { metadata: { simvue: { metrics: { [name]: { units, mks_conversion: null, mks_units: null } } } } } });
    assert.equal(r.status, 200);
  }
  await postMetrics(py, steps(20, (s) => ({ velocity: 1.5 * s, temperature: 20 + s })));

  await page.goto(URL_ + `/#/run/${c.id}?tab=metrics`);
  await waitFor('the charts', () => page.evaluate(() => window.__simtrack.charts.has('velocity') && window.__simtrack.charts.has('temperature')));
  const labels = await page.evaluate(() => ['velocity', 'temperature'].map((m) => window.__simtrack.charts.get(m).axes[1].label));
  assert.deepEqual(labels, ['m/s', 'K']);
  assert.match(await page.textContent('.chart[data-metric="velocity"] .title'), /velocity \[m\/s\]/);
  await page.screenshot({ path: join(SHOTS, 'ui4-units-run.png'), fullPage: true });

  // Compare: the runs agree on velocity's unit, not on temperature's.
  await page.goto(URL_ + `/#/compare?ids=${c.id},${py}&metrics=velocity,temperature`);
  await waitFor('both compare charts', () => page.evaluate(() => window.__simtrack.charts.has('velocity') && window.__simtrack.charts.has('temperature')));
  const cmp = await page.evaluate(() => ['velocity', 'temperature'].map((m) => window.__simtrack.charts.get(m).axes[1].label ?? null));
  assert.deepEqual(cmp, ['m/s', null]);
  await page.screenshot({ path: join(SHOTS, 'ui4-units-compare.png'), fullPage: true });

  // The runs table's metric column.
  await page.goto(URL_ + `/#/runs?folder=${encodeURIComponent('/ui4')}&q=ui4-units-c&cols=velocity`);
  await waitFor('the unit in the column head', async () => /velocity \[m\/s\] \(last\)/.test(await page.textContent('table#runs thead')));
});

test('the System tab draws CPU, memory and threads against time', async () => {
  const id = (await api('/api/runs', { method: 'POST', body: { name: 'ui4-resources', status: 'completed', folder: '/ui4' } })).body.id;
  await postMetrics(id, Array.from({ length: 30 }, (_, s) => ({ step: s, time: s * 10, values: {
    'resources/cpu.usage.percentage': 40 + s, 'resources/cpu.usage.memory': 100 + 2 * s, 'resources/threads': s < 15 ? 4 : 8, 'resources/processes': 1, residual: 1 / (s + 1) } })));
  await page.goto(URL_ + `/#/run/${id}?tab=system`);
  await waitFor('three resource charts', () => page.evaluate(() => ['cpu', 'memory', 'threads'].every((k) => window.__simtrack.resources[k] && document.contains(window.__simtrack.resources[k].root))), 15000);
  const got = await page.evaluate(() => Object.fromEntries(['cpu', 'memory', 'threads'].map((k) => {
    const u = window.__simtrack.resources[k];
    return [k, { label: u.axes[1].label, series: u.series.slice(1).map((s) => s.label), x: Array.from(u.data[0]), y: u.data.slice(1).map((d) => Array.from(d)) }];
  })));
  assert.equal(got.cpu.label, '%');
  assert.deepEqual(got.cpu.series, ['cpu.usage.percentage']);
  assert.deepEqual(got.cpu.x.slice(0, 3), [0, 10, 20], 'against time');
  assert.equal(got.cpu.y[0][29], 69);
  assert.equal(got.memory.label, 'MB');
  assert.equal(got.memory.y[0][29], 158);
  assert.deepEqual(got.threads.series, ['processes', 'threads']);
  assert.deepEqual([got.threads.y[1][0], got.threads.y[1][29]], [4, 8]);
  assert.equal(await page.locator('.run-resources .chart').count(), 3, 'residual is not a resource');
  assert.match(await page.textContent('.run-resources'), /CPU and GPU use \[%\].*Memory \[MB\].*Threads and processes/);
  // Each chart fits its card.
  const fits = await page.$$eval('.run-resources .chart', (cards) => cards.every((c) => c.querySelector('canvas').getBoundingClientRect().right <= c.getBoundingClientRect().right + 1));
  assert.ok(fits, 'charts overflow their cards');
  await page.screenshot({ path: join(SHOTS, 'ui4-resources.png'), fullPage: true });
});
