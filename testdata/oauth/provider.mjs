// The OAuth2 authorization server of dataflow's tests: oidc-provider on 127.0.0.1, with one
// confidential client (dataflow / OAUTH_CLIENT_SECRET) that may use the client-credentials and
// refresh-token grants. Access tokens last OAUTH_TTL seconds (default 12); refresh tokens are
// rotated on every use, and a used one is refused (and revokes its grant), as strict providers
// do. Besides the provider's own endpoints (/token, /token/introspection, /token/revocation):
//
//   POST /admin/refresh-token   mints a refresh token for the user sync-user, as the
//                               authorization-code flow would: {"refresh_token": "..."}
//   POST /admin/revoke          revokes a refresh token: {"refresh_token": "..."}
//   GET  /admin/stats           the access tokens issued by grant: {"client_credentials": n, ...}
//   GET  /api/items             the protected API: 200 with one item for a current access
//                               token (Authorization: Bearer), else 401
//
// It prints "OAuth provider listening on http://127.0.0.1:PORT" when ready (PORT: --port or
// OAUTH_PORT, 0 for a free one) and stops when its standard input ends.
import http from 'node:http';
import Provider from 'oidc-provider';

const args = process.argv.slice(2);
const portArg = args.indexOf('--port');
const port = Number(portArg >= 0 ? args[portArg + 1] : process.env.OAUTH_PORT || 0);
const ttl = Number(process.env.OAUTH_TTL || 12);
const secret = process.env.OAUTH_CLIENT_SECRET || 'client-SECRET-0123456789';

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'dataflow',
      client_secret: secret,
      grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      response_types: ['code'],
      scope: 'openid offline_access items.read',
    }],
    scopes: ['openid', 'offline_access', 'items.read'],
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: false },
    },
    ttl: { AccessToken: ttl, ClientCredentials: ttl, RefreshToken: 24 * 3600, Grant: 24 * 3600 },
    rotateRefreshToken: true,
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  // Access tokens issued, by grant, for the tests: GET /admin/stats.
  const issued = { client_credentials: 0, refresh_token: 0 };
  provider.on('grant.success', (ctx) => {
    const gty = ctx.oidc.params.grant_type;
    if (gty in issued) issued[gty] += 1;
  });
  const callback = provider.callback();

  const readJSON = (req) => new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => { try { resolve(JSON.parse(data || '{}')); } catch { resolve({}); } });
  });
  const send = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  server.on('request', async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (req.method === 'POST' && url.pathname === '/admin/refresh-token') {
        const client = await provider.Client.find('dataflow');
        const grant = new provider.Grant({ accountId: 'sync-user', clientId: 'dataflow' });
        grant.addOIDCScope('openid offline_access');
        const grantId = await grant.save();
        const rt = new provider.RefreshToken({
          accountId: 'sync-user', client, grantId, scope: 'openid offline_access', gty: 'authorization_code',
        });
        return send(res, 200, { refresh_token: await rt.save() });
      }
      if (req.method === 'POST' && url.pathname === '/admin/revoke') {
        const { refresh_token: value } = await readJSON(req);
        const rt = await provider.RefreshToken.find(value);
        if (rt) await rt.destroy();
        return send(res, 200, { revoked: Boolean(rt) });
      }
      if (req.method === 'GET' && url.pathname === '/admin/stats') {
        return send(res, 200, issued);
      }
      if (url.pathname === '/api/items') {
        const auth = req.headers.authorization || '';
        const value = auth.replace(/^Bearer /i, '');
        const token = (await provider.AccessToken.find(value)) || (await provider.ClientCredentials.find(value));
        if (!token || token.isExpired) {
          return send(res, 401, { error: 'invalid_token', error_description: 'the access token is invalid or has expired' });
        }
        return send(res, 200, { items: [{ id: '1', owner: token.accountId || token.clientId }] });
      }
      return callback(req, res);
    } catch (err) {
      console.error(err);
      return send(res, 500, { error: 'server_error', error_description: String(err) });
    }
  });
  console.log(`OAuth provider listening on ${issuer}`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
