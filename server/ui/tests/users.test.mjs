// People signing in with a password, and the Tokens page, in headless
// chromium against the real server: a wrong password is refused, the right
// one opens the runs with an HttpOnly SameSite=Strict session cookie, a
// token is created (labelled, read-only) and revoked from the Tokens page
// and stops working at once, and signing out ends the session.
//
// Environment (scripts/test.d/30-ui.sh sets it): SIMTRACK_URL, CHROMIUM,
// SIMTRACK_SIGNIN_USER, SIMTRACK_SIGNIN_PASSWORD, SCREENSHOT_DIR.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { URL_, SHOTS, openBrowser } from './harness.mjs';

const USER = process.env.SIMTRACK_SIGNIN_USER;
const PASSWORD = process.env.SIMTRACK_SIGNIN_PASSWORD;
if (!URL_ || !USER || !PASSWORD) throw new Error('SIMTRACK_URL, SIMTRACK_SIGNIN_USER and SIMTRACK_SIGNIN_PASSWORD must be set (run scripts/test.d/30-ui.sh)');
let browser, context, page;

// No token: people sign in with the form. A wrong password answers 401.
before(async () => {
  browser = await openBrowser('simtrack-users-', / (401|403) /, { token: null, viewport: { width: 1280, height: 800 } });
  ({ context, page } = browser);
});

after(async () => {
  if (browser) await browser.close();
});

test('a person signs in with a password; the session cookie is HttpOnly and SameSite=Strict', async () => {
  await page.goto(URL_ + '/#/runs');
  await page.waitForSelector('#signin-password-form');
  await page.screenshot({ path: join(SHOTS, 'signin.png'), fullPage: true });
  await page.fill('#signin-user', USER);
  await page.fill('#signin-password', 'not the password');
  await page.click('#signin-submit');
  await page.waitForSelector('#signin-password-form .error');
  assert.match(await page.textContent('#signin-password-form .error'), /wrong user name or password/);
  assert.equal((await context.cookies()).filter((c) => c.name === 'simtrack_session').length, 0);
  await page.fill('#signin-password', PASSWORD);
  await page.click('#signin-submit');
  await page.waitForFunction((u) => document.getElementById('whoami').textContent === u, USER);
  const [cookie] = (await context.cookies()).filter((c) => c.name === 'simtrack_session');
  assert.ok(cookie, 'a session cookie is set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  // The page cannot read it (HttpOnly), and no token was stored.
  assert.equal(await page.evaluate(() => document.cookie.includes('simtrack_session')), false);
  assert.equal(await page.evaluate(() => localStorage.getItem('simtrack.token') || sessionStorage.getItem('simtrack.token')), null);
  await page.waitForSelector('#nav a[data-page="tokens"]');
});

test('the Tokens page creates, lists and revokes the user\'s own tokens', async () => {
  await page.goto(URL_ + '/#/tokens');
  await page.waitForSelector('#tokens-table');
  await page.fill('#new-token-label', 'ci job');
  await page.fill('#new-token-days', '7');
  await page.check('#new-token-ro');
  await page.click('#new-token-create');
  await page.waitForSelector('#new-token-secret');
  const secret = (await page.textContent('#new-token-secret')).trim();
  const row = page.locator('#tokens-table tr', { hasText: 'ci job' });
  await row.waitFor();
  assert.match(await row.textContent(), /read-only/);
  assert.match(await row.textContent(), new RegExp(USER));
  // The session itself is listed and cannot be revoked from here.
  assert.equal(await page.locator('#tokens-table tr', { hasText: 'sign-in session' }).count() >= 1, true);
  await page.screenshot({ path: join(SHOTS, 'tokens.png'), fullPage: true });
  // The new token works (reads), and cannot write.
  const whoami = (t) => fetch(URL_ + '/api/ui/whoami', { headers: { Authorization: 'Bearer ' + t } }).then((r) => r.status);
  assert.equal(await whoami(secret), 200);
  const write = await fetch(URL_ + '/api/runs', { method: 'POST', headers: { Authorization: 'Bearer ' + secret, 'Content-Type': 'application/json' }, body: '{"name":"x"}' });
  assert.equal(write.status, 403);
  // Revoked from the page: gone from the list, 401 at once.
  await row.locator('button[data-revoke]').click();
  await page.waitForFunction(() => ![...document.querySelectorAll('#tokens-table tr')].some((r) => r.textContent.includes('ci job')));
  assert.equal(await whoami(secret), 401);
  assert.deepEqual(browser.errors, []);
});

test('a write from the page carries the CSRF token; signing out ends the session', async () => {
  // The page's own write (creating a token above) worked; the same cookie
  // without the header is refused.
  const status = await page.evaluate(async () => (await fetch('/api/runs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"csrf"}' })).status);
  assert.equal(status, 403);
  await page.click('#signout');
  await page.waitForSelector('#signin-password-form');
  const after = await page.evaluate(async () => (await fetch('/api/ui/whoami')).status);
  assert.equal(after, 401);
});
