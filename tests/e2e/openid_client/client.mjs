// One step of an OpenID Connect relying party, played by openid-client, against `ostiary serve`.
// JSON in on stdin, JSON out on stdout: {"ok": true, ...} or {"ok": false, "error": ...}.
// Every step starts from discovery, as a real RP process would after a restart.
import * as client from "openid-client";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (chunk) => (data += chunk));
  process.stdin.on("end", () => resolve(data));
}));

// The server under test listens on http://127.0.0.1: openid-client refuses plain http
// unless told, and is told only here.
const insecure = { execute: [client.allowInsecureRequests] };

async function configuration() {
  const auth = input.client_secret
    ? client.ClientSecretBasic(input.client_secret)
    : client.None();
  return client.discovery(new URL(input.issuer), input.client_id, undefined, auth, insecure);
}

function claimsOf(tokens) {
  return { tokens: { ...tokens }, claims: tokens.claims() ?? null };
}

const steps = {
  async register() {
    const config = await client.dynamicClientRegistration(
      new URL(input.issuer),
      input.metadata,
      undefined,
      { ...insecure, initialAccessToken: input.initial_access_token },
    );
    return { metadata: config.clientMetadata(), server: config.serverMetadata() };
  },

  async authorize() {
    const config = await configuration();
    const codeVerifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: input.redirect_uri,
      scope: input.scope,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      nonce,
      state,
      ...(input.extra ?? {}),
    });
    return { authorization_url: url.href, code_verifier: codeVerifier, nonce, state };
  },

  async redeem() {
    const config = await configuration();
    // checks: state, iss (RFC 9207), PKCE, and the ID token: signature by the JWKS, iss,
    // aud, azp, exp, iat, nonce, at_hash, alg as registered
    const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
      pkceCodeVerifier: input.code_verifier,
      expectedNonce: input.nonce,
      expectedState: input.state,
      idTokenExpected: true,
      ...(input.max_age !== undefined ? { maxAge: input.max_age } : {}),
    });
    return claimsOf(tokens);
  },

  async userinfo() {
    const config = await configuration();
    return { userinfo: await client.fetchUserInfo(config, input.access_token, input.sub) };
  },

  async refresh() {
    const config = await configuration();
    return claimsOf(await client.refreshTokenGrant(config, input.refresh_token));
  },

  async logout_url() {
    const config = await configuration();
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: input.id_token_hint,
      post_logout_redirect_uri: input.post_logout_redirect_uri,
      state: input.state,
    });
    return { logout_url: url.href };
  },
};

try {
  const result = await steps[input.step]();
  process.stdout.write(JSON.stringify({ ok: true, ...result }));
} catch (err) {
  process.stdout.write(JSON.stringify({
    ok: false,
    name: err?.name,
    code: err?.code,
    error: err?.error ?? err?.cause?.error,
    message: String(err?.message ?? err),
    status: err?.status ?? err?.cause?.status,
    claim: err?.cause?.claim ?? err?.cause?.cause?.claim ?? null,
  }));
}
