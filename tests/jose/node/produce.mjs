// Direction 2: sign and encrypt for Ostiary to verify and decrypt. Reads a JSON list of cases.
import * as jose from "jose";
import jsonwebtoken from "jsonwebtoken";
import { bytes, joseKey, jsonwebtokenKey, runAll } from "./harness.mjs";

async function produce(c) {
  if (c.lib === "jose" && c.kind === "jws") {
    const key = await joseKey(c.key, c.alg);
    const token = await new jose.CompactSign(bytes(c.payload))
      .setProtectedHeader({ ...c.header, alg: c.alg })
      .sign(key);
    return { token };
  }
  if (c.lib === "jose" && c.kind === "jwt") {
    const key = await joseKey(c.key, c.alg);
    const token = await new jose.SignJWT(c.claims)
      .setProtectedHeader({ ...c.header, alg: c.alg })
      .sign(key);
    return { token };
  }
  if (c.lib === "jsonwebtoken" && c.kind === "jwt") {
    const token = jsonwebtoken.sign(c.claims, jsonwebtokenKey(c.key), {
      algorithm: c.alg,
      ...c.options,
    });
    return { token };
  }
  if (c.lib === "jose" && c.kind === "jwe") {
    const key = await joseKey(c.key, c.alg);
    const jwe = new jose.CompactEncrypt(bytes(c.payload)).setProtectedHeader({
      ...c.header,
      alg: c.alg,
      enc: c.enc,
    });
    if (c.p2c !== undefined) jwe.setKeyManagementParameters({ p2c: c.p2c });
    return { token: await jwe.encrypt(key) };
  }
  throw new Error(`unknown case ${c.lib}/${c.kind}`);
}

await runAll(produce);
