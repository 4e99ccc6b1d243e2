// An independent relying party (openid-client) against the lakests development IdP.
//
// Usage: node rp-flow.mjs <issuer>
//
// The IdP must run with interactive: false and these clients:
//   spa      (public, redirect http://127.0.0.1:9/callback)
//   backend  (confidential, secret from LAKESTS_TEST_RP_SECRET, same redirect URI)
// and a user "alice". Each scenario does discovery, builds the authorization URL with PKCE,
// follows the IdP's redirect without a browser (login_hint), and lets openid-client exchange
// the code and validate the ID token (signature included: non-repudiation checks on).
// Prints one JSON object: {"scenarios": [{name, ok, claims?, header?, userinfo?, error?}]}.

import * as client from 'openid-client';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const issuer = process.argv[2];
if (!issuer) {
  console.error('usage: node rp-flow.mjs <issuer>');
  process.exit(2);
}
const secret = process.env.LAKESTS_TEST_RP_SECRET ?? '';

// Nothing here may hang: one overall deadline.
setTimeout(() => {
  console.error('rp-flow: overall deadline of 60 s passed');
  process.exit(3);
}, 60_000).unref();

function decodePart(jwt, i) {
  return JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString('utf8'));
}

async function login({ clientId, auth, fault, userinfo }) {
  const config = await client.discovery(new URL(issuer), clientId, secret && clientId !== 'spa' ? secret : undefined, auth, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    timeout: 10,
  });
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email profile',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    login_hint: 'alice',
  };
  if (fault) params.lakests_fault = fault;
  const authUrl = client.buildAuthorizationUrl(config, params);
  const resp = await fetch(authUrl, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  const location = resp.headers.get('location');
  if (resp.status !== 302 || !location) {
    throw new Error(`authorize answered ${resp.status} without a redirect`);
  }
  if (!location.startsWith(REDIRECT_URI + '?')) {
    throw new Error('authorize redirected somewhere unexpected');
  }
  const tokens = await client.authorizationCodeGrant(config, new URL(location), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const out = { claims: tokens.claims(), header: decodePart(tokens.id_token, 0) };
  if (userinfo) {
    out.userinfo = await client.fetchUserInfo(config, tokens.access_token, out.claims.sub);
  }
  return out;
}

const scenarios = [
  { name: 'public-pkce', clientId: 'spa', auth: client.None(), userinfo: true },
  { name: 'confidential-basic', clientId: 'backend', auth: client.ClientSecretBasic(secret) },
  { name: 'confidential-post', clientId: 'backend', auth: client.ClientSecretPost(secret) },
];
for (const fault of [
  'expired',
  'future_iat',
  'wrong_audience',
  'bad_signature',
  'missing_claim:sub',
  'missing_claim:nonce',
  'missing_claim:iss',
  'missing_claim:exp',
  'unpublished_key',
]) {
  scenarios.push({ name: `fault:${fault}`, clientId: 'spa', auth: client.None(), fault });
}

const results = [];
for (const s of scenarios) {
  try {
    const r = await login(s);
    results.push({ name: s.name, ok: true, ...r });
  } catch (e) {
    results.push({
      name: s.name,
      ok: false,
      error: { name: e?.name, code: e?.code, message: String(e?.message ?? e), cause: e?.cause?.message },
    });
  }
}
process.stdout.write(JSON.stringify({ scenarios: results }) + '\n');
