// Direction 1: verify and decrypt what Ostiary produced. Reads a JSON list of cases on stdin.
import * as jose from "jose";
import jsonwebtoken from "jsonwebtoken";
import { b64url, joseKey, jsonwebtokenKey, runAll } from "./harness.mjs";

async function consume(c) {
  if (c.lib === "jose" && c.kind === "jws") {
    const key = await joseKey(c.key, c.alg);
    const { payload, protectedHeader } = await jose.compactVerify(c.token, key, {
      algorithms: [c.alg],
    });
    return { payload: b64url(payload), header: protectedHeader };
  }
  if (c.lib === "jose" && c.kind === "jwt") {
    const key = await joseKey(c.key, c.alg);
    const { payload, protectedHeader } = await jose.jwtVerify(c.token, key, {
      algorithms: [c.alg],
      currentDate: new Date(c.now * 1000),
      ...c.options,
    });
    return { claims: payload, header: protectedHeader };
  }
  if (c.lib === "jsonwebtoken" && c.kind === "jwt") {
    const { header, payload } = jsonwebtoken.verify(c.token, jsonwebtokenKey(c.key), {
      algorithms: [c.alg],
      clockTimestamp: c.now,
      complete: true,
      ...c.options,
    });
    return { claims: payload, header };
  }
  if (c.lib === "jose" && c.kind === "jwe") {
    const key = await joseKey(c.key, c.alg);
    const { plaintext, protectedHeader } = await jose.compactDecrypt(c.token, key, {
      keyManagementAlgorithms: [c.alg],
      contentEncryptionAlgorithms: [c.enc],
      maxPBES2Count: 1_000_000,
    });
    return { payload: b64url(plaintext), header: protectedHeader };
  }
  throw new Error(`unknown case ${c.lib}/${c.kind}`);
}

await runAll(consume);
