// Debian's headless Chromium, driven by playwright-core, through the development IdP's
// interactive sign-in page: open it, screenshot it, try a wrong password (screenshot the
// error), then sign in with the right one and stop at the application's callback.
//
// Environment (all required):
//   LAKESTS_TEST_AUTHORIZE_URL     the full /authorize URL to open
//   LAKESTS_TEST_CALLBACK_URL      the redirect URI the sign-in must reach
//   LAKESTS_TEST_CHROMIUM          the Chromium binary (e.g. /usr/bin/chromium)
//   LAKESTS_TEST_SCREENSHOT        where to save the sign-in page (PNG)
//   LAKESTS_TEST_ERROR_SCREENSHOT  where to save the wrong-password page (PNG)
//   LAKESTS_TEST_USER              the display name of the user to pick
//   LAKESTS_TEST_PASSWORD          that user's password
// Prints one JSON object: {pageText, wrongPasswordAlert, finalUrl, finalTitle}.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return v;
}

const authorizeUrl = need('LAKESTS_TEST_AUTHORIZE_URL');
const callbackUrl = need('LAKESTS_TEST_CALLBACK_URL');
const executablePath = need('LAKESTS_TEST_CHROMIUM');
const screenshot = need('LAKESTS_TEST_SCREENSHOT');
const errorScreenshot = need('LAKESTS_TEST_ERROR_SCREENSHOT');
const user = need('LAKESTS_TEST_USER');
const password = need('LAKESTS_TEST_PASSWORD');

setTimeout(() => {
  console.error('browser-signin: overall deadline of 90 s passed');
  process.exit(3);
}, 90_000).unref();

const userDataDir = mkdtempSync(join(tmpdir(), 'lakests-devidp-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 820, height: 900 },
    timeout: 30_000,
  });
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());

  const first = await page.goto(authorizeUrl, { waitUntil: 'load' });
  if (!first || first.status() !== 200) {
    throw new Error(`the sign-in page answered ${first?.status()}`);
  }
  const pageText = await page.locator('main').innerText();
  await page.screenshot({ path: screenshot, fullPage: true });

  await page.getByLabel(`Password for ${user}`).fill('not-the-password');
  await page.getByRole('button', { name: `Sign in as ${user}` }).click();
  const alert = page.locator('#error');
  await alert.waitFor();
  const wrongPasswordAlert = await alert.innerText();
  await page.screenshot({ path: errorScreenshot, fullPage: true });

  await page.getByLabel(`Password for ${user}`).fill(password);
  await page.getByRole('button', { name: `Sign in as ${user}` }).click();
  await page.waitForURL((u) => u.href.startsWith(callbackUrl + '?'), { waitUntil: 'load' });
  const finalUrl = page.url();
  const finalTitle = await page.title();

  process.stdout.write(JSON.stringify({ pageText, wrongPasswordAlert, finalUrl, finalTitle }) + '\n');
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
