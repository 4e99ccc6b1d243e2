// The browser's part of `lakests login`, played by Debian's headless Chromium through
// playwright-core. lakests runs it as its --browser-command, so the authorization URL is the
// last argument.
//
//   node chromium.mjs URL
//
// Environment:
//   LAKESTS_TEST_BROWSER_ACTION  what to do on the identity provider's page:
//                                  signin:<name>  click "Sign in as <name>" (development IdP)
//                                  cancel         click "Cancel and return to the application"
//                                  follow         nothing: the provider redirects by itself
//   LAKESTS_TEST_BROWSER_LOG     a file that gets one JSON line when the browser opens and one
//                                with the final page (title, message) at the callback
//   LAKESTS_TEST_CHROMIUM        the Chromium binary (default /usr/bin/chromium)
//
// Nothing here prints or logs a URL's query: it carries the code.

import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const url = process.argv.at(-1);
const action = process.env.LAKESTS_TEST_BROWSER_ACTION ?? 'follow';
const logFile = process.env.LAKESTS_TEST_BROWSER_LOG;
const executablePath = process.env.LAKESTS_TEST_CHROMIUM ?? '/usr/bin/chromium';

function log(entry) {
  if (logFile) appendFileSync(logFile, JSON.stringify({ browser: 'chromium', ...entry }) + '\n');
}

setTimeout(() => {
  log({ event: 'deadline' });
  console.error('chromium.mjs: overall deadline of 90 s passed');
  process.exit(3);
}, 90_000).unref();

const redirectUri = new URL(url).searchParams.get('redirect_uri');
if (!redirectUri) {
  log({ event: 'error', error: 'the authorization URL has no redirect_uri' });
  process.exit(2);
}
log({ event: 'open', action });

const userDataDir = mkdtempSync(join(tmpdir(), 'lakests-login-chromium-'));
let context;
let exitCode = 0;
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
    timeout: 30_000,
  });
  context.setDefaultTimeout(30_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const atCallback = (u) => u.href.startsWith(redirectUri + '?');
  await page.goto(url, { waitUntil: 'load' });
  if (action.startsWith('signin:')) {
    await page.getByRole('button', { name: `Sign in as ${action.slice('signin:'.length)}` }).click();
  } else if (action === 'cancel') {
    await page.getByRole('button', { name: 'Cancel and return to the application' }).click();
  }
  await page.waitForURL(atCallback, { waitUntil: 'load' });
  const title = await page.locator('#title').innerText();
  const message = await page.locator('#message').innerText();
  log({ event: 'callback', title, message });
  console.error(`chromium.mjs: the callback page says: ${title}: ${message}`);
} catch (err) {
  log({ event: 'error', error: String(err?.message ?? err).split('\n')[0] });
  console.error('chromium.mjs failed:', err?.message ?? err);
  exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
