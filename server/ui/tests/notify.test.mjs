// The notifications page and the run page's Notifications section, in
// headless chromium against the real server (scripts/test.d/30-ui.sh sets
// the environment up; that server has no SMTP server configured). A real
// webhook receiver (node's http server on loopback) gets the event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { waitFor as waitForWithin } from './harness.mjs';

const URL_ = process.env.SIMTRACK_URL;
const TOKEN = process.env.SIMTRACK_TOKEN;
const SHOTS = process.env.SCREENSHOT_DIR || join(tmpdir(), 'simtrack-ui-screenshots');
mkdirSync(SHOTS, { recursive: true });
const scratch = mkdtempSync(join(tmpdir(), 'simtrack-ui-notify-'));
let context, page, receiver, hookUrl;
const pageErrors = [];
const received = [];

async function api(path, { method = 'GET', body } = {}) {
  const r = await fetch(URL_ + path, {
    method,
    headers: { Authorization: 'Bearer ' + TOKEN, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
const waitFor = (what, f, timeoutMs = 20000) => waitForWithin(what, f, timeoutMs);

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { received.push(JSON.parse(body)); res.end(); });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  context = await chromium.launchPersistentContext(mkdtempSync(join(scratch, 'profile-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/ (401|422) /.test(m.text())) pageErrors.push(m.text()); });
  page.on('dialog', (d) => d.accept());
  await page.goto(URL_ + '/#/runs');
  await page.evaluate((t) => localStorage.setItem('simtrack.token', t), TOKEN);
});
after(async () => {
  // Leave no channel behind for the other UI tests' runs.
  const list = await api('/api/ui/notifications');
  for (const c of list.body?.channels?.data || []) await api('/api/ui/notifications/' + c.id, { method: 'DELETE' });
  if (context) await context.close();
  if (receiver) receiver.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('channels are added on the notifications page and show their last delivery', async () => {
  await page.goto(URL_ + '/#/notifications');
  await page.waitForSelector('form#channel-form');
  assert.ok(await page.locator('#nav a[data-page="notifications"]').count(), 'the page is in the navigation');
  // A webhook (JSON) and an email address; this server has no SMTP server.
  await page.selectOption('#channel-kind', 'webhook');
  await page.fill('#channel-target', hookUrl);
  await page.click('#channel-add');
  await page.waitForSelector('#channel-list tbody tr');
  await page.selectOption('#channel-kind', 'email');
  await page.fill('#channel-target', 'not an address');
  await page.click('#channel-add');
  await page.waitForSelector('form#channel-form [role=alert]');
  assert.match(await page.textContent('form#channel-form [role=alert]'), /not an email address/);
  await page.fill('#channel-target', 'ui-tester@example.org');
  await page.click('#channel-add');
  await waitFor('two channels', async () => (await page.locator('#channel-list tbody tr').count()) === 2);

  const run = await api('/api/runs', { method: 'POST', body: { name: 'notify-ui-fails', folder: '/notify-ui' } });
  assert.equal(run.status, 200);
  const id = run.body.id;
  assert.equal((await api('/api/runs/' + id, { method: 'PUT', body: { status: 'failed' } })).status, 200);
  await waitFor('the webhook', () => received.find((e) => e.run.id === id));
  const ev = received.find((e) => e.run.id === id);
  assert.equal(ev.event, 'failed');
  assert.equal(ev.run.name, 'notify-ui-fails');
  // The page refreshes itself: the webhook sent, the email retrying with its reason.
  await page.waitForSelector('#channel-list tr:has(td:text-is("webhook (JSON)")) .badge:text-is("sent")', { timeout: 15000 });
  await page.waitForSelector('#channel-list tr:has(td:text-is("email")) .badge:text-is("retrying")', { timeout: 15000 });
  assert.match(await page.textContent('#channel-list tr:has(td:text-is("email"))'), /no SMTP server is configured/);
  await page.screenshot({ path: join(SHOTS, 'notifications.png'), fullPage: true });

  await page.goto(URL_ + '/#/run/' + id);
  await page.waitForSelector('#run-notifications #run-delivery-list');
  const statuses = await page.$$eval('#run-delivery-list tbody tr', (rows) => rows.map((r) => r.dataset.status).sort());
  assert.deepEqual(statuses, ['retrying', 'sent']);
  const section = await page.textContent('#run-notifications');
  assert.ok(section.includes('email ui-tester@example.org') && section.includes('webhook ' + hookUrl), section);
  await page.locator('#run-notifications').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, 'run-notifications.png') });
  assert.deepEqual(pageErrors, []);
});
