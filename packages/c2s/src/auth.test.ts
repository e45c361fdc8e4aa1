import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SaslError, ScramClient, deriveCredentials, type ScramMechanism } from "@jabberfarm/sasl";
import { SaslExchange, SaslRefusal, accountFor, type SaslOptions } from "./auth.js";

const creds = deriveCredentials("secret", { iterations: 4096 });
const asked: string[] = [];
const opts: SaslOptions = {
  domain: "example.test",
  scramSecret: Buffer.alloc(32, 7),
  storage: {
    async getCredentials(user) {
      asked.push(user);
      if (user === "broken@example.test") throw new Error("database down");
      return user === "juliet@example.test" ? creds : null;
    },
  },
};

async function scram(mechanism: ScramMechanism, user: string, password: string, authzid?: string) {
  const client = new ScramClient(mechanism, user, password, authzid === undefined ? {} : { authzid });
  const ex = new SaslExchange(mechanism, opts);
  const first = await ex.step(Buffer.from(client.first()));
  assert.equal(first.type, "challenge");
  const last = await ex.step(Buffer.from(await client.finalAsync(first.data)));
  return { client, last };
}

async function scramWith(o: SaslOptions, mechanism: ScramMechanism, user: string, password: string) {
  const client = new ScramClient(mechanism, user, password);
  const ex = new SaslExchange(mechanism, o);
  const first = await ex.step(Buffer.from(client.first()));
  assert.equal(first.type, "challenge");
  return ex.step(Buffer.from(await client.finalAsync(first.data)));
}

async function saslCondition(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SaslError) return err.condition;
    throw err;
  }
  return "none";
}

describe("SaslExchange", () => {
  for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-1"] as const) {
    it(`${mechanism}: success carries a server signature the client verifies; usernames are normalised localparts`, async () => {
      const { client, last } = await scram(mechanism, "Juliet", "secret");
      assert.equal(last.type, "success");
      if (last.type !== "success") return;
      assert.equal(last.user.toString(), "juliet@example.test");
      client.verify(Buffer.from(last.data!));
    });
  }

  it("SCRAM: an unknown user and a wrong password fail alike, at the end", async () => {
    assert.equal(await saslCondition(scram("SCRAM-SHA-256", "romeo", "secret")), "not-authorized");
    assert.equal(await saslCondition(scram("SCRAM-SHA-256", "juliet", "wrong")), "not-authorized");
    assert.equal(await saslCondition(scram("SCRAM-SHA-256", "not a localpart@", "secret")), "not-authorized");
  });

  it("SCRAM: an authzid of another account is invalid-authzid; the own bare JID is accepted", async () => {
    assert.equal(await saslCondition(scram("SCRAM-SHA-1", "juliet", "secret", "romeo@example.test")), "invalid-authzid");
    const { last } = await scram("SCRAM-SHA-1", "juliet", "secret", "JULIET@example.test");
    assert.equal(last.type, "success");
  });

  it("PLAIN: right and wrong passwords, unknown users, authzid", async () => {
    const plain = (msg: string) => new SaslExchange("PLAIN", opts).step(Buffer.from(msg));
    const ok = await plain("\0juliet\0secret");
    assert.equal(ok.type, "success");
    assert.equal(await saslCondition(plain("\0juliet\0nope")), "not-authorized");
    assert.equal(await saslCondition(plain("\0romeo\0secret")), "not-authorized");
    assert.equal(await saslCondition(plain("romeo@example.test\0juliet\0secret")), "invalid-authzid");
    assert.equal(await saslCondition(plain("juliet\0secret")), "malformed-request");
  });

  it("a storage failure is temporary-auth-failure", async () => {
    assert.equal(await saslCondition(new SaslExchange("PLAIN", opts).step(Buffer.from("\0broken\0x"))), "temporary-auth-failure");
    assert.equal(await saslCondition(scram("SCRAM-SHA-256", "broken", "x")), "temporary-auth-failure");
  });

  it("without an initial response the first challenge is empty", async () => {
    const ex = new SaslExchange("PLAIN", opts);
    assert.deepEqual(await ex.step(null), { type: "challenge", data: "" });
    assert.equal((await ex.step(Buffer.from("\0juliet\0secret"))).type, "success");
    assert.equal(await saslCondition(ex.step(Buffer.from("more"))), "malformed-request");
  });

  it("PLAIN derives its key in the thread pool: the event loop turns while it runs", async () => {
    // Enough iterations to take a while anywhere: a derivation on the event
    // loop would finish before a single setImmediate callback could run.
    const slow = deriveCredentials("secret", { iterations: 400_000 });
    const ex = new SaslExchange("PLAIN", { ...opts, storage: { getCredentials: async () => slow } });
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    const step = await ex.step(Buffer.from("\0juliet\0secret"));
    spinning = false;
    assert.equal(step.type, "success");
    assert.ok(turns >= 2, `the event loop turned ${turns} times during the check`);
  });

  it("a locked account and a spent PBKDF2 budget are refused before storage is asked", async () => {
    const locked: SaslOptions = { ...opts, accountBannedFor: (a) => (a === "juliet@example.test" ? 90_000 : 0) };
    asked.length = 0;
    await assert.rejects(new SaslExchange("PLAIN", locked).step(Buffer.from("\0Juliet\0secret")),
      (e: unknown) => e instanceof SaslRefusal && e.condition === "temporary-auth-failure" && /try again in 2 min/.test(e.message));
    await assert.rejects(new SaslExchange("SCRAM-SHA-1", locked).step(Buffer.from(new ScramClient("SCRAM-SHA-1", "juliet", "secret").first())),
      (e: unknown) => e instanceof SaslRefusal && e.condition === "temporary-auth-failure");
    assert.deepEqual(asked, [], "no credential lookup for a locked account");
    const spent: SaslOptions = { ...opts, takePbkdf2: () => false };
    await assert.rejects(new SaslExchange("PLAIN", spent).step(Buffer.from("\0romeo\0secret")), (e: unknown) => e instanceof SaslRefusal && /busy/.test(e.message));
    assert.deepEqual(asked, []);
    // SCRAM costs the server no PBKDF2: the budget does not apply.
    assert.equal((await scramWith(spent, "SCRAM-SHA-256", "juliet", "secret")).type, "success");
  });

  it("accountFor maps SASL usernames to bare JIDs of the domain", () => {
    assert.equal(accountFor("Juliet", "example.test")?.toString(), "juliet@example.test");
    assert.equal(accountFor("a@b", "example.test"), null);
    assert.equal(accountFor("", "example.test"), null);
  });
});
