// oidc-provider as an OAuth 2 token endpoint for bench/token_endpoint.py.
//
// Environment: BENCH_FORMAT ("jwt": RS256 JWT access tokens per RFC 9068, or "opaque"),
// BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_RESOURCE (the one resource server; RFC 8707),
// BENCH_SCOPES. Listens on 127.0.0.1 on a free port and prints {"port": N} as its first line.
//
// Storage is a plain Map adapter: the package's own memory adapter is an LRU of 1,000 entries,
// which would evict the pool of refresh tokens the benchmark prepares. Everything else is the
// package's documented configuration. POST /bench/refresh-tokens?n=N mints N refresh tokens
// (each with its own grant, as N separate authorizations would) through the provider's models,
// outside the measured window.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const FORMAT = process.env.BENCH_FORMAT ?? 'jwt';
const CLIENT_ID = process.env.BENCH_CLIENT_ID ?? 'bench';
const CLIENT_SECRET = process.env.BENCH_CLIENT_SECRET ?? 'bench-secret';
const RESOURCE = process.env.BENCH_RESOURCE ?? 'https://api.example';
const SCOPES = process.env.BENCH_SCOPES ?? 'read write';
const ACCOUNT_ID = 'bench-user';
const ACCESS_TTL = 600;
const REFRESH_TTL = 30 * 24 * 3600;

if (!['jwt', 'opaque'].includes(FORMAT)) {
  throw new Error(`BENCH_FORMAT must be jwt or opaque, not ${FORMAT}`);
}

const epoch = () => Math.floor(Date.now() / 1000);
const models = new Map();
const grantMembers = new Map();

function modelStore(name) {
  let store = models.get(name);
  if (!store) {
    store = new Map();
    models.set(name, store);
  }
  return store;
}

class MapAdapter {
  constructor(name) {
    this.name = name;
    this.store = modelStore(name);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? epoch() + expiresIn : Infinity;
    this.store.set(id, { payload, expiresAt });
    if (payload.grantId) {
      let members = grantMembers.get(payload.grantId);
      if (!members) {
        members = [];
        grantMembers.set(payload.grantId, members);
      }
      members.push([this.name, id]);
    }
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= epoch()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [id, entry] of this.store) {
      if (entry.payload.uid === uid) return this.find(id);
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [id, entry] of this.store) {
      if (entry.payload.userCode === userCode) return this.find(id);
    }
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = epoch();
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [name, id] of grantMembers.get(grantId) ?? []) {
      modelStore(name).delete(id);
    }
    grantMembers.delete(grantId);
  }
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

const resourceServer = {
  scope: SCOPES,
  audience: RESOURCE,
  accessTokenTTL: ACCESS_TTL,
  accessTokenFormat: FORMAT,
  ...(FORMAT === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
};

const provider = new Provider('http://127.0.0.1', {
  adapter: MapAdapter,
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      redirect_uris: ['https://client.example/callback'],
      scope: SCOPES,
    },
  ],
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return resourceServer;
      },
    },
  },
  // offline_access is what makes oidc-provider offer the refresh_token grant at all.
  scopes: ['offline_access', ...SCOPES.split(' ')],
  // Ostiary rotates every refresh token on use; ask the same of oidc-provider.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: ACCESS_TTL,
    ClientCredentials: ACCESS_TTL,
    RefreshToken: REFRESH_TTL,
    Grant: REFRESH_TTL,
    Interaction: 600,
    Session: REFRESH_TTL,
    AuthorizationCode: 60,
    IdToken: 3600,
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const client = await provider.Client.find(CLIENT_ID);

async function mintRefreshToken() {
  const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: CLIENT_ID });
  grant.addResourceScope(RESOURCE, 'read');
  const grantId = await grant.save();
  const token = new provider.RefreshToken({
    accountId: ACCOUNT_ID,
    client,
    grantId,
    gty: 'authorization_code',
    resource: RESOURCE,
    scope: 'read',
  });
  return token.save();
}

const handleProvider = provider.callback();

const server = http.createServer(async (req, res) => {
  if (req.method === 'POST' && req.url.startsWith('/bench/refresh-tokens')) {
    const n = Number(new URL(req.url, 'http://127.0.0.1').searchParams.get('n') ?? '0');
    const values = [];
    for (let i = 0; i < n; i += 1) values.push(await mintRefreshToken());
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(values.join('\n'));
    return;
  }
  handleProvider(req, res);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
