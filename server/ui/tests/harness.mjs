// Shared set-up of the browser test files run by scripts/test.d/30-ui.sh:
// the server's address and token from the environment, API helpers, a
// polling wait, and one headless Chromium per test file.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const URL_ = process.env.SIMTRACK_URL;
export const TOKEN = process.env.SIMTRACK_TOKEN;
export const REPO = process.env.REPO;
export const LIBDIR = process.env.SIMTRACK_LIBDIR;
export const SHOTS = process.env.SCREENSHOT_DIR || join(tmpdir(), 'simtrack-ui-screenshots');
mkdirSync(SHOTS, { recursive: true });

export async function api(path, { method = 'GET', body } = {}) {
  const r = await fetch(URL_ + path, {
    method, redirect: 'manual',
    headers: { Authorization: 'Bearer ' + TOKEN, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text.replace(/:(-?Infinity|NaN)([,}\]])/g, ':null$2')) : null; } catch { parsed = text; }
  return { status: r.status, body: parsed, headers: r.headers };
}
// The parsed body of a request that must succeed.
export async function apiOk(path, opts) {
  const r = await api(path, opts);
  assert.ok(r.status >= 200 && r.status < 300, `${(opts && opts.method) || 'GET'} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
export const q = (v) => encodeURIComponent(JSON.stringify(v));
// Deadlines on the monotonic clock: this VM's wall clock can step by tens of
// seconds, which once ended a 20 s wait after 0.8 s.
export async function waitFor(what, f, timeoutMs = 15000) {
  const end = performance.now() + timeoutMs;
  let last;
  while (performance.now() < end) {
    try { last = await f(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}
export const mkRun = async (body, folder = '/ui2') => {
  const r = await api('/api/runs', { method: 'POST', body: { status: 'completed', folder, ...body } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.id;
};
export async function postMetrics(run, metrics) {
  // NaN and Infinity cannot be spelled in JSON.stringify: write them raw.
  const text = JSON.stringify({ run, metrics }, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? `@@${v}@@` : v))
    .replace(/"@@(-?Infinity|NaN)@@"/g, '$1');
  const r = await fetch(URL_ + '/api/metrics', { method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' }, body: text });
  assert.equal(r.status, 200, await r.text());
}
export const steps = (n, f) => Array.from({ length: n }, (_, s) => ({ step: s, time: s * 0.001, values: f(s) }));

// A headless Chromium on the runs page, signed in with `token` (none: the
// sign-in form shows); `errors` collects script errors on the page (console
// errors of `expected` HTTP statuses aside).
export async function openBrowser(prefix, expected = / (401|422) /, { token = TOKEN, viewport = { width: 1440, height: 900 } } = {}) {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  const errors = [];
  const context = await chromium.launchPersistentContext(mkdtempSync(join(scratch, 'profile-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, acceptDownloads: true, viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !expected.test(m.text())) errors.push(m.text()); });
  page.on('dialog', (d) => d.accept());
  await page.goto(URL_ + '/#/runs');
  if (token) await page.evaluate((t) => localStorage.setItem('simtrack.token', t), token);
  return { context, page, errors, scratch, close: async () => { await context.close(); rmSync(scratch, { recursive: true, force: true }); } };
}
