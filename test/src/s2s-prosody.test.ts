/**
 * Federation with a real Prosody (Debian's 0.12, test/src/prosody.ts), in
 * both directions, twice:
 *
 * - dialback: the farm (f.example) with its self-signed certificate and
 *   Prosody (p.example) with one openssl made for it; neither can verify
 *   the other, so both streams authenticate with Server Dialback (XEP-0220)
 *   over TLS: Prosody checks the farm's keys with the farm's s2s, the farm
 *   checks Prosody's with Prosody;
 * - SASL EXTERNAL: both with certificates from a CA the test makes, which
 *   both trust (`tls.ca`, Prosody's `cafile` with `s2s_secure_auth`): both
 *   streams authenticate with EXTERNAL (XEP-0178).
 *
 * Each time users on both sides exchange messages both ways, an iq to the
 * other server, and a subscription. Prosody runs mod_smacks: after SASL
 * EXTERNAL it offers XEP-0198 on the stream, and the farm uses it. Which method each stream used is read
 * from the s2s's own log lines. Prosody must be installed: .ci/run
 * installs it with lua-unbound; the test fails, not skips, without it.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestCa, TestZone } from "@jabberfarm/s2s/testing";
import type { Element } from "@jabberfarm/xml";
import { Farm, waitUntil } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";
import { PROSODY, Prosody, selfSigned } from "./prosody.js";

const F = "f.example";
const P = "p.example";

async function pair(zone: TestZone, opts: { farmEnv?: Record<string, string>; prosody: { cert: string; key: string; cafile?: string } }): Promise<{ farm: Farm; prosody: Prosody }> {
  assert.ok(existsSync(PROSODY), "Prosody is installed (.ci/run installs Debian's prosody and lua-unbound)");
  const prosody = new Prosody({
    domain: P, dns: { host: "127.0.0.1", port: zone.port }, ...opts.prosody, users: [{ user: "pat", password: "pat-pw" }],
  });
  const farm = await Farm.start({ s2s: 1, upArgs: ["--domain", F, "--dns", zone.address], env: opts.farmEnv ?? {} });
  await farm.addUser(`alice@${F}`, "alice-pw");
  await prosody.start();
  zone.serve(F, [{ port: farm.farmPorts!.s2s![0]!.port, target: `s2s.${F}` }]);
  zone.a.set(`s2s.${F}`, ["127.0.0.1"]);
  zone.serve(P, [{ port: prosody.s2sPort, target: `xmpp.${P}` }]);
  zone.a.set(`xmpp.${P}`, ["127.0.0.1"]);
  return { farm, prosody };
}

/** Messages both ways, an iq to each server, a subscription; then the methods the farm's s2s logged. */
async function exchange(farm: Farm, prosody: Prosody, clients: LibraryClient[]): Promise<{ out: unknown[]; in: unknown[]; sm: unknown[] }> {
  const alice = new LibraryClient(farm.ports.c2s, "alice", "alice-pw", "desk", F, "127.0.0.1", { plain: true });
  const pat = new LibraryClient(prosody.c2sPort, "pat", "pat-pw", "laptop", P, "127.0.0.1", { plain: true });
  clients.push(alice, pat);
  alice.jid = (await alice.xmpp.start()).toString();
  pat.jid = (await pat.xmpp.start()).toString();
  await alice.send(xml("presence"));
  await pat.send(xml("presence"));

  await alice.send(xml("message", { to: `pat@${P}/laptop`, type: "chat", id: "f1" }, xml("body", {}, "hello prosody")));
  const m1 = await pat.next((e) => e.name === "message" && e.attrs.id === "f1", 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\nprosody log:\n${prosody.log.slice(-4000)}`);
  });
  assert.equal(m1.attrs.from, `alice@${F}/desk`);
  assert.equal(m1.getChildText("body"), "hello prosody");
  await pat.send(xml("message", { to: `alice@${F}/desk`, type: "chat", id: "p1" }, xml("body", {}, "hello farm")));
  const m2 = await alice.next((e) => e.name === "message" && e.attrs.id === "p1", 30_000);
  assert.equal(m2.attrs.from, `pat@${P}/laptop`);

  // iq to the other server, both ways (XEP-0199)
  const pong = await alice.iq(xml("iq", { type: "get", to: P }, xml("ping", { xmlns: "urn:xmpp:ping" })));
  assert.equal(pong.attrs.type, "result");
  const pong2 = await pat.iq(xml("iq", { type: "get", to: F }, xml("ping", { xmlns: "urn:xmpp:ping" })));
  assert.equal(pong2.attrs.type, "result");

  // alice subscribes to pat; Prosody's user approves
  await alice.send(xml("presence", { type: "subscribe", to: `pat@${P}` }));
  const req = await pat.next((e: Element) => e.name === "presence" && e.attrs.type === "subscribe", 20_000);
  assert.equal(req.attrs.from, `alice@${F}`);
  await pat.send(xml("presence", { type: "subscribed", to: `alice@${F}` }));
  await alice.next((e) => e.name === "presence" && e.attrs.type === "subscribed" && e.attrs.from === `pat@${P}`, 20_000);

  const s2sLines = farm.logs.filter((l) => l.process === "s2s");
  return {
    sm: s2sLines.filter((l) => l.msg === "outgoing stream up" && l.remote === P).map((l) => l.sm),
    out: s2sLines.filter((l) => l.msg === "outgoing stream up" && l.remote === P).map((l) => l.auth),
    in: s2sLines.filter((l) => l.msg === "incoming stream authenticated" && l.remote === P).map((l) => l.auth),
  };
}

describe("federation with a real Prosody", () => {
  let zone: TestZone;
  const clients: LibraryClient[] = [];
  const running: Array<{ farm: Farm; prosody: Prosody }> = [];

  before(async () => {
    zone = new TestZone();
    await zone.listen();
  });

  after(async () => {
    for (const c of clients) await c.stop();
    for (const r of running) {
      await r.prosody.stop();
      await r.farm.stop();
    }
    await zone?.close();
  });

  test("self-signed certificates on both sides: dialback both directions", { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "jf-prosody-certs-"));
    const r = await pair(zone, { prosody: selfSigned(dir, P) });
    running.push(r);
    const methods = await exchange(r.farm, r.prosody, clients);
    process.stdout.write(`# prosody, self-signed: farm → prosody ${JSON.stringify(methods.out)}, prosody → farm ${JSON.stringify(methods.in)}\n`);
    assert.deepEqual([...new Set(methods.out)], ["dialback"], "the farm's stream to Prosody used dialback");
    assert.deepEqual([...new Set(methods.in)], ["dialback"], "Prosody's stream to the farm used dialback");
    assert.match(r.prosody.log, /dialback/i, "Prosody's log mentions dialback");
  });

  test("certificates from a CA both trust: SASL EXTERNAL both directions", { timeout: 180_000 }, async () => {
    for (const r of running.splice(0)) {
      await r.prosody.stop();
      await r.farm.stop();
    }
    const ca = new TestCa();
    const farmCert = ca.issue(F);
    const r = await pair(zone, {
      farmEnv: { JABBERFARM__S2S__TLS__CERT: farmCert.cert, JABBERFARM__S2S__TLS__KEY: farmCert.key, JABBERFARM__S2S__TLS__CA: `[${ca.certPath}]` },
      prosody: { ...ca.issue(P), cafile: ca.certPath },
    });
    running.push(r);
    const methods = await exchange(r.farm, r.prosody, clients);
    process.stdout.write(`# prosody, CA certificates: farm → prosody ${JSON.stringify(methods.out)}, prosody → farm ${JSON.stringify(methods.in)}\n`);
    assert.deepEqual([...new Set(methods.out)], ["external"], "the farm's stream to Prosody used SASL EXTERNAL");
    assert.deepEqual([...new Set(methods.in)], ["external"], "Prosody's stream to the farm used SASL EXTERNAL");
    // Prosody's mod_smacks offers XEP-0198 after SASL (with dialback there is no stream restart to offer it in):
    // the farm's routes to it were acknowledged only once Prosody said it handled them.
    assert.deepEqual([...new Set(methods.sm)], [true], "XEP-0198 on the farm's stream to Prosody");
    await waitUntil("Prosody logged a secure stream", 1000, () => /secure|EXTERNAL/i.test(r.prosody.log) || undefined);
  });
});
