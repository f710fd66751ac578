// Keys arrive from the Python test as {jwk}, {pem} or {secret} (base64url bytes).
import * as jose from "jose";

export async function readCases() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

export function bytes(b64url) {
  return new Uint8Array(Buffer.from(b64url, "base64url"));
}

export function b64url(data) {
  return Buffer.from(data).toString("base64url");
}

// A key for the `jose` package: raw bytes for secrets, an imported JWK otherwise.
export async function joseKey(key, alg) {
  if (key.secret !== undefined) return bytes(key.secret);
  return jose.importJWK(key.jwk, alg);
}

// A key for `jsonwebtoken`: a Buffer secret or a PEM string.
export function jsonwebtokenKey(key) {
  if (key.secret !== undefined) return Buffer.from(key.secret, "base64url");
  return key.pem;
}

// Run every case, one result per case; one failure never hides the others.
export async function runAll(handler) {
  const results = [];
  for (const c of await readCases()) {
    try {
      results.push({ id: c.id, ok: true, ...(await handler(c)) });
    } catch (err) {
      results.push({ id: c.id, ok: false, error: `${err.name}: ${err.message}`, code: err.code ?? null });
    }
  }
  process.stdout.write(JSON.stringify(results));
}
