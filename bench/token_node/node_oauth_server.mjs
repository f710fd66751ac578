// @node-oauth/oauth2-server as an OAuth 2 token endpoint for bench/token_endpoint.py.
//
// Environment: BENCH_FORMAT ("jwt": RS256 JWT access tokens shaped per RFC 9068, signed with
// node's crypto, or "opaque": the package's own random tokens), BENCH_CLIENT_ID,
// BENCH_CLIENT_SECRET, BENCH_RESOURCE (the access tokens' audience), BENCH_SCOPES. Listens on
// 127.0.0.1 on a free port and prints {"port": N} as its first line; GET /jwks publishes the
// public key so the benchmark can check the tokens it is about to count.
//
// The package is framework-free: this file is its model (in memory, Maps) and a bare node:http
// front. The client secret is kept as a SHA-256 hash and compared in constant time, as Ostiary
// does; refresh tokens rotate on every use (the package's alwaysIssueNewRefreshToken default).
// POST /bench/refresh-tokens?n=N stores N refresh tokens for the benchmark's pool, outside
// the measured window.
import { createHash, generateKeyPairSync, randomBytes, sign, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

import OAuth2Server from '@node-oauth/oauth2-server';

const { Request, Response } = OAuth2Server;

const FORMAT = process.env.BENCH_FORMAT ?? 'jwt';
const CLIENT_ID = process.env.BENCH_CLIENT_ID ?? 'bench';
const CLIENT_SECRET = process.env.BENCH_CLIENT_SECRET ?? 'bench-secret';
const RESOURCE = process.env.BENCH_RESOURCE ?? 'https://api.example';
const SCOPES = new Set((process.env.BENCH_SCOPES ?? 'read write').split(' '));
const ISSUER = 'http://127.0.0.1';
const USER_ID = 'bench-user';
const ACCESS_TTL = 600;
const REFRESH_TTL = 30 * 24 * 3600;
const MAX_BODY = 64 * 1024;

if (!['jwt', 'opaque'].includes(FORMAT)) {
  throw new Error(`BENCH_FORMAT must be jwt or opaque, not ${FORMAT}`);
}

const sha256 = (value) => createHash('sha256').update(value).digest();
const b64url = (value) => Buffer.from(value).toString('base64url');

const client = {
  id: CLIENT_ID,
  secretHash: sha256(CLIENT_SECRET),
  grants: ['client_credentials', 'refresh_token'],
  accessTokenLifetime: ACCESS_TTL,
  refreshTokenLifetime: REFRESH_TTL,
};
const user = { id: USER_ID };
const refreshTokens = new Map();
const accessTokens = new Map();

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' }] };
const jwtHeader = b64url(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: 'bench-rs256' }));

function rs256AccessToken(tokenClient, tokenUser, scope) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: ISSUER,
    sub: tokenUser.id,
    aud: RESOURCE,
    exp: now + ACCESS_TTL,
    iat: now,
    jti: randomBytes(16).toString('base64url'),
    client_id: tokenClient.id,
    scope: (scope ?? []).join(' '),
  };
  const input = `${jwtHeader}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

const model = {
  async getClient(clientId, clientSecret) {
    if (clientId !== client.id) return false;
    if (clientSecret == null || !timingSafeEqual(sha256(clientSecret), client.secretHash)) {
      return false;
    }
    return client;
  },
  async getUserFromClient(tokenClient) {
    return { id: tokenClient.id };
  },
  async validateScope(tokenUser, tokenClient, scope) {
    if (!scope || !scope.every((s) => SCOPES.has(s))) return false;
    return scope;
  },
  async saveToken(token, tokenClient, tokenUser) {
    const saved = { ...token, client: tokenClient, user: tokenUser };
    if (FORMAT === 'opaque') accessTokens.set(token.accessToken, saved);
    if (token.refreshToken) refreshTokens.set(token.refreshToken, saved);
    return saved;
  },
  async getRefreshToken(value) {
    return refreshTokens.get(value) ?? false;
  },
  async revokeToken(token) {
    return refreshTokens.delete(token.refreshToken);
  },
  ...(FORMAT === 'jwt' ? { generateAccessToken: async (c, u, s) => rs256AccessToken(c, u, s) } : {}),
};

const oauth = new OAuth2Server({ model, accessTokenLifetime: ACCESS_TTL, refreshTokenLifetime: REFRESH_TTL });

function mintRefreshToken() {
  const value = randomBytes(32).toString('base64url');
  refreshTokens.set(value, {
    refreshToken: value,
    refreshTokenExpiresAt: new Date(Date.now() + REFRESH_TTL * 1000),
    scope: ['read'],
    client,
    user,
  });
  return value;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, headers, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

async function handleToken(req, res) {
  const body = Object.fromEntries(new URLSearchParams(await readBody(req)));
  const request = new Request({ method: req.method, headers: req.headers, query: {}, body });
  const response = new Response({ headers: {} });
  try {
    await oauth.token(request, response);
  } catch (err) {
    if (!response.body || !response.body.error) {
      send(res, err.code ?? 500, {}, { error: err.name ?? 'server_error' });
      return;
    }
  }
  send(res, response.status, response.headers, response.body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, ISSUER);
  if (req.method === 'POST' && url.pathname === '/token') {
    handleToken(req, res).catch(() => send(res, 400, {}, { error: 'invalid_request' }));
  } else if (req.method === 'GET' && url.pathname === '/jwks') {
    send(res, 200, {}, jwks);
  } else if (req.method === 'POST' && url.pathname === '/bench/refresh-tokens') {
    const n = Number(url.searchParams.get('n') ?? '0');
    const values = [];
    for (let i = 0; i < n; i += 1) values.push(mintRefreshToken());
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(values.join('\n'));
  } else {
    send(res, 404, {}, { error: 'not_found' });
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
