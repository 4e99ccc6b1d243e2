// A third-party OpenID Provider for the end-to-end tests of the lakests authenticator role:
// panva's oidc-provider (OpenID Certified), pinned in package-lock.json.
//
//   node server.mjs [port] [--tls]   (port 0 or absent: any free port on 127.0.0.1)
//
// With --tls it serves HTTPS with the test-only certificate of tls/ (issued by tls/ca.pem).
//
// Prints one line `READY <issuer>` on stdout once it listens. Logins complete without a
// browser and without a form: the interaction endpoint signs in the account named by the
// authorization request's login_hint (default "alice") and grants the requested scopes, so a
// test follows the redirects (keeping cookies) from the authorization URL to the redirect URI.
//
// Test-only: GET /test/last-id-token-header/<client_id> answers the JOSE header of the last
// ID token issued to that client (or null), so a test can see which algorithm signed it.
//
// Clients:
//   lakests-public        public (token_endpoint_auth_method none, PKCE only), native app with
//                         loopback redirect URIs (any port, RFC 8252 §7.3), RS256 ID tokens
//   lakests-confidential  client_secret_basic, ES256 ID tokens
//   lakests-ui            web, public (PKCE only): the web-UI login of a lakests authenticator;
//                         redirect URIs from LAKESTS_UI_REDIRECT_URIS (space-separated; a web
//                         client's must match exactly and the test picks the port), post-logout
//                         redirect URI a lakeFS UI's login page at http://127.0.0.1:8000
//                         (RP-Initiated Logout)
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import Provider from 'oidc-provider';

const args = process.argv.slice(2);
const tls = args.includes('--tls');
const port = Number.parseInt(args.find((a) => a !== '--tls') ?? '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: node server.mjs [port] [--tls]; got ${args.join(' ')}`);
  process.exit(2);
}

export const CONFIDENTIAL_SECRET = 'lakests-confidential-secret-for-tests-only';

const accounts = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Liddell',
    groups: ['admins', 'data-engineers'],
  },
  bob: {
    email: 'bob@example.com',
    email_verified: false,
    name: 'Bob',
    groups: ['viewers'],
  },
};

function jwk(type, options, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const jwks = {
  keys: [
    jwk('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256'),
    jwk('ec', { namedCurve: 'P-256' }, 'ec-1', 'ES256'),
  ],
};

const server = tls
  ? https.createServer({
    cert: readFileSync(new URL('./tls/server.pem', import.meta.url)),
    key: readFileSync(new URL('./tls/server-key.pem', import.meta.url)),
  })
  : http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'lakests-public',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1:8085/callback', 'http://127.0.0.1:8085/session-callback'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: 'RS256',
      },
      {
        client_id: 'lakests-confidential',
        client_secret: CONFIDENTIAL_SECRET,
        application_type: 'web',
        token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: ['https://app.example/callback', 'https://app.example/session-callback'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: 'ES256',
      },
      {
        client_id: 'lakests-ui',
        application_type: 'web',
        token_endpoint_auth_method: 'none',
        redirect_uris: (process.env.LAKESTS_UI_REDIRECT_URIS ?? 'http://127.0.0.1:8086/lakests/ui/callback')
          .split(' ').filter((u) => u !== ''),
        post_logout_redirect_uris: ['http://127.0.0.1:8000/auth/login'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks,
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'userinfo_only'],
      groups: ['groups'],
    },
    // The account's claims go into the ID token itself (lakeFS reads the ID token's claims);
    // a claim only userinfo has shows that userinfo merging works.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = accounts[sub];
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims(use) {
          const claims = { sub, ...account };
          if (use === 'userinfo') claims.userinfo_only = 'from-userinfo';
          return claims;
        },
      };
    },
  });

  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session, grantId } = details;
    if (prompt.name === 'login') {
      const hint = typeof params.login_hint === 'string' ? params.login_hint : 'alice';
      const result = accounts[hint]
        ? { login: { accountId: hint } }
        : { error: 'access_denied', error_description: 'unknown test account' };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      return;
    }
    if (prompt.name === 'consent') {
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      if (missing.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      const id = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
      return;
    }
    res.statusCode = 400;
    res.end(`unexpected prompt ${prompt.name}`);
  }

  const lastIdTokenHeader = new Map();
  provider.on('grant.success', (ctx) => {
    const idToken = ctx.body?.id_token;
    const clientId = ctx.oidc?.client?.clientId;
    if (typeof idToken === 'string' && clientId) {
      lastIdTokenHeader.set(clientId, JSON.parse(Buffer.from(idToken.split('.')[0], 'base64url')));
    }
  });

  const callback = provider.callback();
  server.on('request', (req, res) => {
    const headerPrefix = '/test/last-id-token-header/';
    if (req.method === 'GET' && req.url.startsWith(headerPrefix)) {
      const clientId = decodeURIComponent(req.url.slice(headerPrefix.length));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(lastIdTokenHeader.get(clientId) ?? null));
      return;
    }
    if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((err) => {
        console.error('interaction failed:', err);
        res.statusCode = 500;
        res.end('interaction failed');
      });
      return;
    }
    callback(req, res);
  });
  provider.on('server_error', (ctx, err) => console.error('server_error:', err));
  console.log(`READY ${issuer}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
