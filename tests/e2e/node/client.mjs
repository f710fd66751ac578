// One step of an OAuth client built on oauth4webapi, against a running `ostiary serve`.
// Reads {step, issuer, client_id, client_secret?, ...} as JSON on stdin and writes
// {ok: true, ...} or {ok: false, error, code, status} as JSON on stdout. The Python test
// (tests/e2e/test_oauth4webapi.py) plays the person at the login and consent pages.
import * as oauth from "oauth4webapi";

// The server under test listens on http://127.0.0.1; oauth4webapi wants https otherwise.
const insecure = { [oauth.allowInsecureRequests]: true };

async function readRequest() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function discover(issuer) {
  const url = new URL(issuer);
  const response = await oauth.discoveryRequest(url, { algorithm: "oauth2", ...insecure });
  return oauth.processDiscoveryResponse(url, response);
}

// client_secret_basic with a secret, private_key_jwt (RFC 7523) with a private JWK, else none.
async function clientOf(r) {
  const client = { client_id: r.client_id };
  if (r.private_jwk) {
    const { kid, ...jwk } = r.private_jwk;
    const algorithm = { name: "ECDSA", namedCurve: jwk.crv };
    const key = await crypto.subtle.importKey("jwk", jwk, algorithm, false, ["sign"]);
    return { client, auth: oauth.PrivateKeyJwt({ key, kid }) };
  }
  const auth = r.client_secret ? oauth.ClientSecretBasic(r.client_secret) : oauth.None();
  return { client, auth };
}

// RFC 9068 as a resource server checks it: typ at+jwt, signature by the JWKS, iss, aud, exp.
async function validateAccessToken(as, accessToken, audience) {
  const request = new Request("http://127.0.0.1/resource", {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  return oauth.validateJwtAccessToken(as, request, audience, insecure);
}

async function tokens(as, result, audience) {
  const claims = await validateAccessToken(as, result.access_token, audience);
  return { tokens: result, claims };
}

const steps = {
  async discover(r) {
    return { metadata: await discover(r.issuer) };
  },

  async authorize(r) {
    const as = await discover(r.issuer);
    const code_verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("client_id", r.client_id);
    url.searchParams.set("redirect_uri", r.redirect_uri);
    url.searchParams.set("scope", r.scope);
    url.searchParams.set("state", state);
    url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(code_verifier));
    url.searchParams.set("code_challenge_method", "S256");
    return { authorization_url: url.href, code_verifier, state };
  },

  async redeem(r) {
    const as = await discover(r.issuer);
    const { client, auth } = await clientOf(r);
    // Checks state and, since the metadata says it is supported, iss (RFC 9207).
    const params = oauth.validateAuthResponse(as, client, new URL(r.callback_url), r.state);
    const response = await oauth.authorizationCodeGrantRequest(
      as, client, auth, params, r.redirect_uri, r.code_verifier, insecure,
    );
    const result = await oauth.processAuthorizationCodeResponse(as, client, response);
    return tokens(as, result, r.audience);
  },

  async refresh(r) {
    const as = await discover(r.issuer);
    const { client, auth } = await clientOf(r);
    const response = await oauth.refreshTokenGrantRequest(
      as, client, auth, r.refresh_token, insecure,
    );
    const result = await oauth.processRefreshTokenResponse(as, client, response);
    return tokens(as, result, r.audience);
  },

  async client_credentials(r) {
    const as = await discover(r.issuer);
    const { client, auth } = await clientOf(r);
    const response = await oauth.clientCredentialsGrantRequest(
      as, client, auth, { scope: r.scope }, insecure,
    );
    const result = await oauth.processClientCredentialsResponse(as, client, response);
    return tokens(as, result, r.audience);
  },

  async introspect(r) {
    const as = await discover(r.issuer);
    const { client, auth } = await clientOf(r);
    const response = await oauth.introspectionRequest(as, client, auth, r.token, insecure);
    return { introspection: await oauth.processIntrospectionResponse(as, client, response) };
  },

  async revoke(r) {
    const as = await discover(r.issuer);
    const { client, auth } = await clientOf(r);
    const response = await oauth.revocationRequest(as, client, auth, r.token, insecure);
    await oauth.processRevocationResponse(response);
    return {};
  },
};

const request = await readRequest();
let reply;
try {
  reply = { ok: true, ...(await steps[request.step](request)) };
} catch (err) {
  reply = {
    ok: false,
    error: `${err.name}: ${err.message}`,
    code: err.code ?? null,
    oauth_error: err.error ?? null, // ResponseBodyError: the RFC 6749 error code
    status: err.status ?? null,
  };
}
process.stdout.write(JSON.stringify(reply));
