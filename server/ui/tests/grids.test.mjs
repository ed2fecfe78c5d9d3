// Browser test of the run page's "Fields" section (server/ui/pages/grids.js):
// a 2-D array metric drawn as a heat map — the values at a few cells and the
// colour painted there — and a 1-D one as a line; both follow a new step
// logged while the page is open. Same environment as ui.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { URL_, SHOTS, apiOk as api, waitFor, openBrowser } from './harness.mjs';

let browser, page;

const NX = 24, NY = 16;
// The field at step s: heat[j][i] (i along x, the grid's axis 0).
const heat = (s) => Array.from({ length: NY }, (_, j) => Array.from({ length: NX }, (_, i) => i * 1.5 - j + s * 10));
const profile = (s) => Array.from({ length: NX }, (_, i) => Math.sin(i / 4) + s);

async function logStep(run, grids, s) {
  await api(`/api/runs/${run}/metrics/`, {
    method: 'POST',
    body: [
      { metric: 'heat', grid: grids.plate, step: s, time: s * 0.5, timestamp: null, array: heat(s) },
      { metric: 'profile', grid: grids.rod, step: s, time: s * 0.5, timestamp: null, array: profile(s) },
    ],
  });
}

before(async () => {
  browser = await openBrowser('simtrack-grids-', / (401|422) /, { viewport: { width: 1440, height: 1000 } });
  page = browser.page;
});
after(async () => {
  if (browser) await browser.close();
});

test('a 2-D field is a heat map with the logged values, a 1-D one a line; both follow new steps', async () => {
  const { id: run } = await api('/api/runs', { method: 'POST', body: { name: 'ui-fields', folder: '/ui-grids', status: 'running' } });
  const x = Array.from({ length: NX }, (_, i) => i * 0.1), y = Array.from({ length: NY }, (_, j) => j * 0.2);
  const plate = (await api('/api/grids', { method: 'POST', body: { name: 'plate', grid: [x, y], labels: ['x', 'y'], units: ['m', 'm'] } })).id;
  const rod = (await api('/api/grids', { method: 'POST', body: { name: 'rod', grid: [x], labels: ['x'], units: ['m'] } })).id;
  const grids = { plate, rod };
  for (let s = 0; s < 3; s++) await logStep(run, grids, s);

  await page.goto(URL_ + `/#/run/${run}`);
  const seen = await waitFor('the heat map at step 2', () => page.evaluate(() => {
    const g = window.__simtrack.grids && window.__simtrack.grids.heat;
    return g && g.step === 2 && { shape: g.shape, min: g.min, max: g.max };
  }));
  assert.deepEqual(seen.shape, [NY, NX]);
  const cells = [[0, 0], [NX - 1, 0], [0, NY - 1], [7, 5], [NX - 1, NY - 1]];
  const drawn = await page.evaluate((cells) => {
    const g = window.__simtrack.grids.heat;
    const [ny, nx] = g.shape;
    const ctx = g.canvas.getContext('2d');
    const dpr = g.canvas.width / parseFloat(g.canvas.style.width);
    return cells.map(([i, j]) => {
      const v = g.values[j * nx + i];
      // The centre of cell (i, j); y grows upwards.
      const px = (g.box.x + (i + 0.5) * g.box.w / nx) * dpr, py = (g.box.y + (ny - j - 0.5) * g.box.h / ny) * dpr;
      const rgb = Array.from(ctx.getImageData(Math.floor(px), Math.floor(py), 1, 1).data.slice(0, 3));
      return { v, rgb, want: g.colourOf(v) };
    });
  }, cells);
  cells.forEach(([i, j], k) => {
    assert.equal(drawn[k].v, heat(2)[j][i], `value at cell (${i}, ${j})`);
    drawn[k].rgb.forEach((c, n) => assert.ok(Math.abs(c - drawn[k].want[n]) <= 2, `colour at cell (${i}, ${j}): ${drawn[k].rgb} vs ${drawn[k].want}`));
  });
  // The colour scale spans every step's values.
  assert.equal(seen.min, Math.min(...heat(0).flat()));
  assert.equal(seen.max, Math.max(...heat(2).flat()));
  // The two fields load independently: wait for the line too.
  const line = await waitFor('the line at step 2', () => page.evaluate(() => {
    const p = window.__simtrack.grids.profile;
    return p && p.step === 2 && p;
  }));
  assert.equal(line.step, 2);
  assert.deepEqual(line.values, profile(2));
  assert.match(await page.textContent('.field[data-metric="profile"]'), /step 2 of 2/);
  await page.screenshot({ path: join(SHOTS, 'grids-fields.png'), fullPage: true });

  // Live: a step logged now appears without a reload.
  await logStep(run, grids, 3);
  await waitFor('step 3 on the page', () => page.evaluate(() => window.__simtrack.grids.heat.step === 3 && window.__simtrack.grids.profile.step === 3));
  const v = await page.evaluate(() => window.__simtrack.grids.heat.values[5 * 24 + 7]);
  assert.equal(v, heat(3)[5][7]);

  // The slider goes back to step 0.
  await page.$eval('.field[data-metric="heat"] input[type=range]', (el) => { el.value = '0'; el.dispatchEvent(new Event('input')); });
  await waitFor('step 0', () => page.evaluate(() => window.__simtrack.grids.heat.step === 0));
  assert.deepEqual(browser.errors, []);
});
