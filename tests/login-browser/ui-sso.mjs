// The browser's part of the lakeFS web-UI single sign-on end-to-end test
// (tests/python/test_real_lakefs_ui_sso.py): Debian's headless Chromium, driven by
// playwright-core, does what a person does in the real lakeFS UI.
//
//   node ui-sso.mjs
//
// Environment:
//   UI_SSO_LAKEFS        the lakeFS UI's base URL (http://127.0.0.1:PORT)
//   UI_SSO_BUTTON        the label of lakeFS's fallback login button
//   UI_SSO_SIGN_IN_AS    the name on the development IdP's "Sign in as <name>" button
//   UI_SSO_REPO          a repository the user's group may read
//   UI_SSO_SHOTS         a directory for the screenshots (ui-sso-1..4-*.png)
//   UI_SSO_RESULT        a file that gets the JSON result
//   LAKESTS_TEST_CHROMIUM  the Chromium binary (default /usr/bin/chromium)
//
// It prints and records no URL query and no cookie value (the code, the state and the token).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`ui-sso.mjs: ${k} is not set`);
    process.exit(2);
  }
  return v;
};
const lakefs = env('UI_SSO_LAKEFS').replace(/\/$/, '');
const button = env('UI_SSO_BUTTON');
const signInAs = env('UI_SSO_SIGN_IN_AS');
const repo = env('UI_SSO_REPO');
const shots = env('UI_SSO_SHOTS');
const resultFile = env('UI_SSO_RESULT');
const executablePath = process.env.LAKESTS_TEST_CHROMIUM ?? '/usr/bin/chromium';

setTimeout(() => {
  console.error('ui-sso.mjs: overall deadline of 150 s passed');
  process.exit(3);
}, 150_000).unref();

const result = { steps: [] };
const step = (name, extra = {}) => {
  result.steps.push({ name, ...extra });
  console.error(`ui-sso.mjs: ${name}`);
};
const originOf = (u) => new URL(u).origin;
const pathOf = (u) => new URL(u).pathname;

/// The UI's own logged-in check: GET /api/v1/user from the page (same-origin, its cookies).
const currentUser = (page) =>
  page.evaluate(async () => {
    const r = await fetch('/api/v1/user', { headers: { Accept: 'application/json' } });
    let body = null;
    try {
      body = await r.json();
    } catch {}
    return { status: r.status, id: body?.user?.id ?? '' };
  });

const userDataDir = mkdtempSync(join(tmpdir(), 'lakests-ui-sso-chromium-'));
let context;
let exitCode = 0;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 760 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  context.setDefaultTimeout(30_000);
  const page = context.pages()[0] ?? (await context.newPage());

  // 1. lakeFS's login page, with the fallback button lakests configured.
  await page.goto(`${lakefs}/auth/login`, { waitUntil: 'networkidle' });
  const fallback = page.getByRole('button', { name: button }).or(page.getByRole('link', { name: button }));
  await fallback.first().waitFor();
  await page.screenshot({ path: join(shots, 'ui-sso-1-lakefs-login.png') });
  step('lakefs login page', { path: pathOf(page.url()) });

  // 2. The button goes through lakests to the identity provider's sign-in page.
  await fallback.first().click();
  const idpButton = page.getByRole('button', { name: `Sign in as ${signInAs}` });
  await idpButton.waitFor();
  result.idpOrigin = originOf(page.url());
  await page.screenshot({ path: join(shots, 'ui-sso-2-idp-sign-in.png') });
  step('identity provider page', { origin: result.idpOrigin });

  // 3. Signing in lands in the lakeFS UI, logged in, on the page lakeFS asked for.
  await idpButton.click();
  await page.waitForURL((u) => u.origin === lakefs && !u.pathname.startsWith('/auth/'), { waitUntil: 'load' });
  await page.getByText(repo, { exact: true }).first().waitFor();
  await page.waitForLoadState('networkidle');
  result.landedPath = pathOf(page.url());
  await page.screenshot({ path: join(shots, 'ui-sso-3-lakefs-logged-in.png') });
  result.user = await currentUser(page);
  step('logged in to lakeFS', { path: result.landedPath, user: result.user.id });
  const cookies = await context.cookies(lakefs);
  const session = cookies.find((c) => c.name === 'internal_auth_session');
  result.cookie = session
    ? { httpOnly: session.httpOnly, sameSite: session.sameSite, secure: session.secure, path: session.path,
        hostOnly: !session.domain.startsWith('.'), value: session.value }
    : null;

  // 4. The repository the group may read, and a write its policy denies, from the UI's origin.
  result.repoRead = await page.evaluate(async (r) => {
    const resp = await fetch(`/api/v1/repositories/${encodeURIComponent(r)}/branches`);
    return resp.status;
  }, repo);
  result.write = await page.evaluate(async (r) => {
    const resp = await fetch(`/api/v1/repositories/${encodeURIComponent(r)}/branches`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'not-allowed', source: 'main' }),
    });
    let message = '';
    try {
      message = (await resp.json()).message ?? '';
    } catch {}
    return { status: resp.status, message };
  }, repo);
  step('read allowed, write refused', { read: result.repoRead, write: result.write.status });

  // 5. The navbar's Logout (auth.ui_config.logout_url: lakests), then lakeFS's login page.
  let loggedOutBy = 'navbar';
  try {
    await page.locator('.navbar-username .dropdown-toggle').first().click({ timeout: 10_000 });
    await page.getByText('Logout', { exact: true }).click({ timeout: 10_000 });
  } catch (e) {
    console.error(`ui-sso.mjs: the navbar's Logout was not found (${String(e.message).split('\n')[0]})`);
    loggedOutBy = 'not-found';
  }
  result.loggedOutBy = loggedOutBy;
  if (loggedOutBy === 'navbar') {
    await page.waitForURL((u) => u.origin === lakefs && u.pathname.startsWith('/auth/login'), { waitUntil: 'load' });
    await page.getByRole('button', { name: button }).or(page.getByRole('link', { name: button })).first().waitFor();
    await page.screenshot({ path: join(shots, 'ui-sso-4-logged-out.png') });
    result.afterLogout = await currentUser(page);
    result.cookieAfterLogout = (await context.cookies(lakefs)).some((c) => c.name === 'internal_auth_session');
    step('logged out', { path: pathOf(page.url()), user: result.afterLogout.id });
  }
} catch (err) {
  result.error = String(err?.message ?? err).split('\n')[0];
  // Where it stopped, for the test's failure message: the path and the page's text.
  try {
    const page = context?.pages()[0];
    if (page) {
      result.stoppedAt = pathOf(page.url());
      result.pageText = (await page.locator('body').innerText()).slice(0, 1500);
      await page.screenshot({ path: join(tmpdir(), 'lakests-ui-sso-failure.png') });
    }
  } catch {}
  console.error('ui-sso.mjs failed:', result.error);
  exitCode = 1;
} finally {
  writeFileSync(resultFile, JSON.stringify(result));
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
