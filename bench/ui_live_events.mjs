// Network per refresh of a live run page with many events (issue 11: ≤ 50 KB).
// Usage: SIMTRACK_URL=... SIMTRACK_TOKEN=... EVENTS=100000 node bench/ui_live_events.mjs
// playwright-core resolves from server/ui/tests: cp bench/ui_live_events.mjs server/ui/tests/ && node server/ui/tests/ui_live_events.mjs
import { chromium } from 'playwright-core';

const URL_ = process.env.SIMTRACK_URL, TOKEN = process.env.SIMTRACK_TOKEN;
const N = +(process.env.EVENTS || 100000);
const call = async (path, method = 'GET', body) => {
  const r = await fetch(URL_ + path, { method, headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};
const run = (await call('/api/runs', 'POST', { name: 'bench-live-events', status: 'running', folder: '/bench' })).id;
for (let i = 0; i < N; i += 10000) {
  await call('/api/events', 'POST', { run, events: Array.from({ length: Math.min(10000, N - i) }, (_, k) => ({ message: `step ${i + k} residual ${Math.exp(-(i + k) / 1e4)}` })) });
}
const ctx = await chromium.launchPersistentContext('', { executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
const page = ctx.pages()[0] || (await ctx.newPage());
await page.goto(URL_ + '/#/runs');
await page.evaluate((t) => localStorage.setItem('simtrack.token', t), TOKEN);
let bytes = 0, requests = 0;
page.on('requestfinished', async (r) => { try { const s = await r.sizes(); bytes += s.responseBodySize + s.responseHeadersSize; requests++; } catch { /* gone */ } });
const t0 = Date.now();
await page.goto(URL_ + '/#/run/' + run);
await page.waitForFunction(() => /of \d+ events/.test(document.body.textContent));
await new Promise((r) => setTimeout(r, 1000));
console.log(`first load: ${(bytes / 1024).toFixed(1)} KiB in ${requests} requests, ${Date.now() - t0} ms`);
const per = [];
for (let k = 0; k < 5; k++) {
  bytes = 0; requests = 0;
  await call(`/api/runs/${run}/heartbeat`, 'PUT');
  await call('/api/events', 'POST', { run, events: [{ message: `live event ${k}` }] });
  await new Promise((r) => setTimeout(r, 2100));
  per.push(bytes);
  console.log(`refresh ${k + 1}: ${(bytes / 1024).toFixed(2)} KiB in ${requests} requests`);
}
console.log(`max per refresh: ${(Math.max(...per) / 1024).toFixed(2)} KiB (target ≤ 50 KB)`);
await ctx.close();
