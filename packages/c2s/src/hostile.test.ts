/**
 * The limits a public c2s needs against hostile clients, against real
 * peers (router, SM, Postgres storage) and a client driven by hand:
 * failed-authentication bans by address and by account, connections per
 * address, the PBKDF2 budget of PLAIN, plaintext smuggled past STARTTLS, and
 * holding new clients while the farm behind the c2s is away.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Component } from "@jabberfarm/component";
import { NS, type Element } from "@jabberfarm/xml";
import type { C2sProcess } from "./process.js";
import { DOMAIN, FAKE_SM_DOMAIN, RawClient, SECRETS, delay, startFarm, type C2sTestFarm } from "./testing.js";

let farm: C2sTestFarm;
const clients: RawClient[] = [];

async function raw(port: number, opts: { directTls?: boolean } = {}): Promise<RawClient> {
  const c = await RawClient.connect(port, opts);
  clients.push(c);
  return c;
}

async function eventually(pred: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await delay(20);
  }
}

function plain(user: string, password: string): string {
  return `<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString("base64")}</auth>`;
}

/** The SASL answer's condition and text. */
function saslAnswer(el: Element): { local: string; condition: string | undefined; text: string | undefined } {
  return { local: el.local, condition: el.getChildren().find((c) => c.local !== "text")?.local, text: el.getChildText("text") ?? undefined };
}

/** A stream error's condition and text. */
async function streamError(c: RawClient, ms = 3000): Promise<{ condition: string; text: string }> {
  const el = await c.next((e) => e.local === "error" && e.ns === NS.STREAMS, ms);
  return { condition: el.getChildren().find((x) => x.local !== "text")?.local ?? "none", text: el.getChildText("text") ?? "" };
}

/** A direct TLS connection the c2s refuses before the handshake: the connect fails. */
async function refusedBeforeTls(port: number): Promise<boolean> {
  return RawClient.connect(port, { directTls: true }).then((c) => {
    c.close();
    return false;
  }, () => true);
}

before(async () => {
  farm = await startFarm({ sm: { maxSessionsPerUser: 2 } });
  for (const u of ["juliet", "mallory", "romeo", "tybalt"]) await farm.addUser(u);
});

after(async () => {
  for (const c of clients) c.close();
  await farm.stop();
});

describe("failed-authentication bans", () => {
  it("answers wrong passwords at once; the fifth from an address bans it, before TLS and SASL", async () => {
    // Loopback is exempt by default: this c2s counts it like any address.
    const c2s = await farm.startC2s({ limits: { authFailureDelayMs: 100, exemptAddresses: [] }, authBans: { address: { failures: 5 } } });
    const tries: number[] = [];
    const wrong = async (c: RawClient, user: string): Promise<ReturnType<typeof saslAnswer>> => {
      const t0 = Date.now();
      c.write(plain(user, "wrong"));
      const answer = saslAnswer(await c.next((el) => el.ns === NS.SASL));
      tries.push(Date.now() - t0);
      return answer;
    };
    const first = await raw(c2s.ports.directTls!, { directTls: true });
    await first.open();
    for (let i = 0; i < 3; i++) assert.equal((await wrong(first, "juliet")).condition, "not-authorized");
    assert.equal((await streamError(first)).condition, "policy-violation", "three on one stream end it");
    const second = await raw(c2s.ports.directTls!, { directTls: true });
    await second.open();
    assert.equal((await wrong(second, "nobody-here")).condition, "not-authorized");
    assert.equal((await wrong(second, "romeo")).condition, "not-authorized", "the fifth failure is answered too");
    const ended = await streamError(second);
    assert.equal(ended.condition, "policy-violation");
    assert.match(ended.text, /temporarily banned/);
    // An answer that grew with each failure would have taken 0.5, 1, 2, 4 and 8 s.
    assert.ok(tries.every((ms) => ms < 1500), `every failure answered promptly: ${tries.join(", ")} ms`);

    // A new connection: our header, then the ban, before anything is negotiated.
    const banned = await raw(c2s.ports.starttls!);
    const refusal = await streamError(banned);
    assert.equal(refusal.condition, "policy-violation");
    assert.match(refusal.text, /temporarily banned .*try again in 10 min/);
    assert.equal(banned.header?.attrs.from, DOMAIN);
    assert.doesNotMatch(banned.text, /<stream:features|starttls/, "no features, no TLS");
    await banned.waitClosed();
    assert.ok(await refusedBeforeTls(c2s.ports.directTls!), "on the direct TLS port, closed without a handshake");
  });

  it("locks an account after its failures: temporary-auth-failure at once, for PLAIN and SCRAM; other accounts go on", async () => {
    const c2s = await farm.startC2s({ authBans: { address: { failures: 0 }, account: { failures: 3, banMs: 60_000 } } });
    for (let n = 0; n < 3; n++) {
      const c = await raw(c2s.ports.directTls!, { directTls: true });
      await c.open();
      c.write(plain("Mallory", "wrong"));
      assert.equal(saslAnswer(await c.next((el) => el.ns === NS.SASL)).condition, "not-authorized");
      c.close();
    }
    const c = await raw(c2s.ports.directTls!, { directTls: true });
    await c.open();
    c.write(plain("mallory", "pw"));
    const locked = saslAnswer(await c.next((el) => el.ns === NS.SASL));
    assert.deepEqual([locked.local, locked.condition], ["failure", "temporary-auth-failure"], "even the right password");
    assert.match(locked.text ?? "", /too many failed attempts for this account; try again in 1 min/);
    const scram = await c.authScram("mallory", "pw");
    assert.equal(saslAnswer(scram).condition, "temporary-auth-failure", "SCRAM is refused at its first message");
    const other = await raw(c2s.ports.directTls!, { directTls: true });
    assert.equal(await other.login("romeo", "pw", "r", { directTls: true }), "romeo@localhost/r");
  });
});

describe("connections per address", () => {
  it("one more than maxConnectionsPerAddress gets our header and policy-violation; on direct TLS, no handshake", async () => {
    const c2s = await farm.startC2s({ limits: { maxConnectionsPerAddress: 2, exemptAddresses: [] } });
    const a = await raw(c2s.ports.starttls!);
    const b = await raw(c2s.ports.directTls!, { directTls: true });
    await Promise.all([a.open(), b.open()]);
    const c = await raw(c2s.ports.starttls!);
    const refused = await streamError(c);
    assert.equal(refused.condition, "policy-violation");
    assert.match(refused.text, /too many connections from your address/);
    assert.equal(c.header?.attrs.from, DOMAIN);
    assert.ok(await refusedBeforeTls(c2s.ports.directTls!));
    a.close();
    // Once the server has seen it close, the address has room again.
    await eventually(async () => {
      const d = await raw(c2s.ports.starttls!);
      d.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}' to='${DOMAIN}' version='1.0'>`);
      const answer = await d.next((el) => el.ns === NS.STREAMS && (el.local === "features" || el.local === "error"));
      d.close();
      return answer.local === "features";
    }, "a connection is accepted again");
  });

  it("loopback is exempt by default (a local proxy would make every client one address)", async () => {
    const c2s = await farm.startC2s({ limits: { maxConnectionsPerAddress: 1 } });
    const conns = await Promise.all([0, 1, 2].map(() => raw(c2s.ports.starttls!)));
    for (const c of conns) assert.ok((await c.open()).getChild("starttls", NS.TLS));
  });
});

describe("sessions per account", () => {
  it("a bind beyond the SM's maxSessionsPerUser is answered resource-constraint, a wait error", async () => {
    const c2s = await farm.startC2s();
    for (const r of ["one", "two"]) await (await raw(c2s.ports.directTls!, { directTls: true })).login("tybalt", "pw", r, { directTls: true });
    const c = await raw(c2s.ports.directTls!, { directTls: true });
    await c.open();
    assert.equal((await c.authScram("tybalt", "pw")).local, "success");
    await c.open();
    c.write(`<iq type='set' id='b3'><bind xmlns='${NS.BIND}'><resource>three</resource></bind></iq>`);
    const answer = await c.next((el) => el.attrs.id === "b3");
    assert.equal(answer.attrs.type, "error");
    const error = answer.getChild("error")!;
    assert.equal(error.attrs.type, "wait");
    assert.ok(error.getChild("resource-constraint"), answer.toString());
    assert.match(error.getChildText("text") ?? "", /at most 2 sessions per account/);
  });
});

describe("the PBKDF2 budget of PLAIN", () => {
  it("beyond plainChecksPerSecond, PLAIN is answered temporary-auth-failure at once; SCRAM is not counted", async () => {
    const c2s = await farm.startC2s({ limits: { plainChecksPerSecond: 1 } });
    const [a, b] = await Promise.all([raw(c2s.ports.directTls!, { directTls: true }), raw(c2s.ports.directTls!, { directTls: true })]);
    await Promise.all([a.open(), b.open()]);
    // Both in the same moment: one token for two checks.
    a.write(plain("juliet", "pw"));
    b.write(plain("tybalt", "pw"));
    const answers = await Promise.all([a, b].map(async (c) => saslAnswer(await c.next((el) => el.ns === NS.SASL))));
    const locals = answers.map((x) => x.local).sort();
    assert.deepEqual(locals, ["failure", "success"], JSON.stringify(answers));
    const busy = answers.find((x) => x.local === "failure")!;
    assert.equal(busy.condition, "temporary-auth-failure");
    assert.match(busy.text ?? "", /busy/);
    const s = await raw(c2s.ports.directTls!, { directTls: true });
    assert.equal(await s.login("romeo", "pw", "scram", { directTls: true }), "romeo@localhost/scram");
  });
});

describe("STARTTLS and what was sent in the clear (CVE-2011-0411)", () => {
  let open: C2sProcess;
  before(async () => {
    open = await farm.startC2s({ requireTls: false, registration: { allow: true } });
  });

  const register = (user: string): string =>
    `<iq type='set' id='smuggled'><query xmlns='jabber:iq:register'><username>${user}</username><password>pw</password></query></iq>`;

  it("an element in the same write as <starttls/> is never acted on", async () => {
    const c = await raw(open.ports.starttls!);
    const f = await c.open();
    assert.ok(f.getChild("register"), "registration is offered without TLS here");
    c.write(`<starttls xmlns='${NS.TLS}'/>${register("smuggled1")}`);
    await c.waitClosed();
    assert.doesNotMatch(c.text, /id='smuggled'/);
    assert.equal(await farm.storage.accountExists("smuggled1@localhost"), false);
  });

  it("elements queued behind a pending SASL answer are discarded with the plaintext stream", async () => {
    const c = await raw(open.ports.starttls!);
    await c.open();
    // SCRAM's first step waits for storage: <starttls/> and the iq queue behind it.
    const first = Buffer.from("n,,n=juliet,r=abcdefghijklmnop").toString("base64");
    c.write(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${first}</auth><starttls xmlns='${NS.TLS}'/>${register("smuggled2")}`);
    await c.waitClosed();
    assert.doesNotMatch(c.text, /<proceed/, "no TLS for a stream with plaintext queued after <starttls/>");
    // The registration, had it run, would have been stored by now: the storage is local.
    await delay(300);
    assert.equal(await farm.storage.accountExists("smuggled2@localhost"), false);
  });
});

describe("serving only while the farm can", () => {
  let sm: Component | undefined;
  const startSm = async (): Promise<void> => {
    sm = new Component({ name: FAKE_SM_DOMAIN, secret: SECRETS.fake, instance: "fake-1", routers: [{ host: "127.0.0.1", port: farm.routerPort }] });
    await sm.start();
  };
  const stopSm = async (): Promise<void> => {
    await sm?.stop();
    sm = undefined;
  };
  after(stopSm);

  it("listens once an SM serves the domain; holds new clients while none does, and refuses them after unreadyHoldMs", async () => {
    const starting = farm.startC2s({ domain: FAKE_SM_DOMAIN, limits: { unreadyHoldMs: 1500 } });
    let started: C2sProcess | undefined;
    void starting.then((c) => (started = c), () => {});
    await delay(300);
    assert.equal(started, undefined, "no listener while no SM serves the domain");
    await startSm();
    const c2s = await starting;
    assert.ok(c2s.ready());

    await stopSm();
    await eventually(() => !c2s.ready(), "the c2s sees the SM go");
    // Held: no answer to its header while the SM is away...
    const held = await raw(c2s.ports.starttls!);
    held.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}' to='${FAKE_SM_DOMAIN}' version='1.0'>`);
    await delay(300);
    assert.equal(held.header, undefined, "held, not answered");
    // ...and served as soon as it is back.
    await startSm();
    await held.next((el) => el.local === "features" && el.ns === NS.STREAMS, 3000);
    assert.equal((held.header as { attrs: Record<string, string> } | undefined)?.attrs.from, FAKE_SM_DOMAIN);

    await stopSm();
    await eventually(() => !c2s.ready(), "the c2s sees the SM go again");
    const refused = await raw(c2s.ports.starttls!);
    const t0 = Date.now();
    const err = await streamError(refused, 5000);
    assert.equal(err.condition, "internal-server-error");
    assert.match(err.text, /cannot reach its session manager or storage/);
    assert.ok(Date.now() - t0 >= 1000, "refused only after the hold");
  });
});
