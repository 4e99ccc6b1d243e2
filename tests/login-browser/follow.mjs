// A browser without a screen for non-interactive logins: follows redirects (keeping cookies)
// from the authorization URL to the callback, and reads the callback page. lakests runs it as
// its --browser-command, so the URL is the last argument.
//
//   node follow.mjs URL
//
// Environment:
//   LAKESTS_TEST_LOGIN_HINT      added as login_hint to the first URL (the development IdP in
//                                non-interactive mode signs that user in at once)
//   LAKESTS_TEST_BROWSER_DELAY_MS  wait this long before the first request
//   LAKESTS_TEST_BROWSER_LOG     a file that gets one JSON line when the browser opens and one
//                                with the final page (status, title, message)
//   LAKESTS_TEST_REDEEM_FIRST_AT a server base URL: before delivering the callback, redeem its
//                                code there (POST /api/v1/sts/login) as an attacker who read
//                                the redirect would, so that the login's own redemption is a
//                                replay
//
// Nothing here prints or logs a URL's query: it carries the code.

import { appendFileSync } from 'node:fs';

const logFile = process.env.LAKESTS_TEST_BROWSER_LOG;
function log(entry) {
  if (logFile) appendFileSync(logFile, JSON.stringify({ browser: 'follow', ...entry }) + '\n');
}

setTimeout(() => {
  log({ event: 'deadline' });
  process.exit(3);
}, 60_000).unref();

let url = new URL(process.argv.at(-1));
const redirectUri = url.searchParams.get('redirect_uri');
const hint = process.env.LAKESTS_TEST_LOGIN_HINT;
if (hint) url.searchParams.set('login_hint', hint);
log({ event: 'open' });

const delay = Number.parseInt(process.env.LAKESTS_TEST_BROWSER_DELAY_MS ?? '0', 10);
if (delay > 0) await new Promise((r) => setTimeout(r, delay));

// One jar for the loopback host (cookies ignore ports), enough for these tests.
const jar = new Map();
const text = (html, id) => {
  const m = html.match(new RegExp(`id="${id}">([^<]*)<`));
  return m ? m[1].replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&') : null;
};

for (let hop = 0; hop < 20; hop += 1) {
  const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }
  const location = res.headers.get('location');
  if (res.status >= 300 && res.status < 400 && location) {
    url = new URL(location, url);
    const thief = process.env.LAKESTS_TEST_REDEEM_FIRST_AT;
    if (thief && redirectUri && url.href.startsWith(redirectUri + '?') && url.searchParams.get('code')) {
      const r = await fetch(new URL('/api/v1/sts/login', thief), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          code: url.searchParams.get('code'),
          state: url.searchParams.get('state'),
          redirect_uri: redirectUri,
        }),
      });
      log({ event: 'redeemed_first', status: r.status });
    }
    continue;
  }
  const body = await res.text();
  const atCallback = redirectUri && url.href.startsWith(redirectUri + '?');
  log({
    event: atCallback ? 'callback' : 'stuck',
    status: res.status,
    title: text(body, 'title'),
    message: text(body, 'message'),
  });
  process.exit(atCallback ? 0 : 1);
}
log({ event: 'stuck', error: 'too many redirects' });
process.exit(1);
