import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  SaslError,
  ScramClient,
  ScramServer,
  deriveCredential,
  type ScramCredential,
  type ScramMechanism,
  type ScramServerOptions,
} from "./index.js";
import { saslError } from "./test-util.js";

const MECHANISMS: readonly ScramMechanism[] = ["SCRAM-SHA-1", "SCRAM-SHA-256"];

/** An in-memory account store: username -> password, credentials derived once per mechanism. */
function store(accounts: Record<string, string>) {
  const creds = new Map<string, ScramCredential>();
  for (const [user, password] of Object.entries(accounts)) {
    for (const m of MECHANISMS) creds.set(`${m}\0${user}`, deriveCredential(m, password));
  }
  const seen: string[] = [];
  const lookup = async (username: string, mechanism: ScramMechanism) => {
    seen.push(username);
    return creds.get(`${mechanism}\0${username}`) ?? null;
  };
  return { lookup, seen };
}

const accounts = store({ juliet: "r0meo!", "a,b=c": "commas", "I X": "spaces" });

/** Run a full exchange and return the server, or throw whatever the server threw. */
async function login(
  mechanism: ScramMechanism,
  username: string,
  password: string,
  opts: ScramServerOptions = {},
  lookup = accounts.lookup,
) {
  const server = new ScramServer(mechanism, lookup, opts);
  const client = new ScramClient(mechanism, username, password);
  const serverFirst = await server.start(client.first());
  const serverFinal = server.finish(client.final(serverFirst));
  client.verify(serverFinal);
  return server;
}

/** Start an exchange for juliet and return the pieces for building tampered final messages. */
async function started(mechanism: ScramMechanism = "SCRAM-SHA-256", password = "r0meo!") {
  const server = new ScramServer(mechanism, accounts.lookup);
  const client = new ScramClient(mechanism, "juliet", password);
  const serverFirst = await server.start(client.first());
  const clientFinal = client.final(serverFirst);
  return { server, client, serverFirst, clientFinal };
}

describe("ScramServer: RFC test vectors", () => {
  it("reproduces RFC 5802 §5 (SCRAM-SHA-1)", async () => {
    const cred = deriveCredential("SCRAM-SHA-1", "pencil", { salt: Buffer.from("QSXCR+Q6sek8bf92", "base64"), iterations: 4096 });
    const server = new ScramServer("SCRAM-SHA-1", async (u) => (u === "user" ? cred : null), { serverNonce: "3rfcNHYJY1ZVvWVs7j" });
    assert.equal(
      await server.start("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
      "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    );
    assert.equal(
      server.finish("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="),
      "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    );
    assert.equal(server.authenticated, true);
    assert.equal(server.username, "user");
    assert.equal(server.authzid, undefined);
  });

  it("reproduces RFC 7677 §3 (SCRAM-SHA-256)", async () => {
    const cred = deriveCredential("SCRAM-SHA-256", "pencil", { salt: Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64"), iterations: 4096 });
    const server = new ScramServer("SCRAM-SHA-256", async (u) => (u === "user" ? cred : null), {
      serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    });
    assert.equal(
      await server.start("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    );
    assert.equal(
      server.finish("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    );
    assert.equal(server.username, "user");
  });

  it("ScramClient produces the RFC 5802 client messages", () => {
    const client = new ScramClient("SCRAM-SHA-1", "user", "pencil", { nonce: "fyko+d2lbbFgONRv9qkxdawL" });
    assert.equal(client.first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    assert.equal(
      client.final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"),
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    );
    client.verify("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    assert.throws(() => client.verify("v=rmF9pqV8S7suAoZWja4dJRkFsKR="), /signature/);
  });

  it("ScramClient produces the RFC 7677 client messages (async PBKDF2)", async () => {
    const client = new ScramClient("SCRAM-SHA-256", "user", "pencil", { nonce: "rOprNGfwEbeRWgbNEkqO" });
    assert.equal(client.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    assert.equal(
      await client.finalAsync("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    client.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  });
});

describe("ScramServer: round trips", () => {
  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: client and server agree with derived credentials`, async () => {
      const server = await login(mechanism, "juliet", "r0meo!");
      assert.equal(server.authenticated, true);
      assert.equal(server.username, "juliet");
      assert.equal(server.authzid, undefined);
    });

    it(`${mechanism}: wrong password -> not-authorized`, async () => {
      await assert.rejects(login(mechanism, "juliet", "r0meo?"), saslError("not-authorized"));
    });
  }

  it("sends the stored iteration count and salt", async () => {
    const cred = deriveCredential("SCRAM-SHA-256", "pw", { iterations: 5001 });
    const server = new ScramServer("SCRAM-SHA-256", async () => cred);
    const client = new ScramClient("SCRAM-SHA-256", "x", "pw");
    const serverFirst = await server.start(client.first());
    assert.match(serverFirst, /,i=5001$/);
    assert.ok(serverFirst.includes(`,s=${cred.salt},`));
    client.verify(server.finish(client.final(serverFirst)));
  });

  it("uses a fresh random server nonce of the requested size", async () => {
    const firsts = await Promise.all(
      [1, 2].map(() => new ScramServer("SCRAM-SHA-1", accounts.lookup, { nonceBytes: 24 }).start("n,,n=juliet,r=abc")),
    );
    const nonces = firsts.map((f) => /^r=abc([^,]+),/.exec(f)![1]!);
    assert.notEqual(nonces[0], nonces[1]);
    assert.equal(Buffer.from(nonces[0]!, "base64").length, 24);
    assert.throws(() => new ScramServer("SCRAM-SHA-1", accounts.lookup, { nonceBytes: 4 }), RangeError);
  });

  it("passes the authzid through", async () => {
    const server = new ScramServer("SCRAM-SHA-1", accounts.lookup);
    const client = new ScramClient("SCRAM-SHA-1", "juliet", "r0meo!", { authzid: "juliet@example.com" });
    assert.match(client.first(), /^n,a=juliet@example\.com,n=juliet,/);
    client.verify(server.finish(client.final(await server.start(client.first()))));
    assert.equal(server.authzid, "juliet@example.com");
  });

  it("accepts the 'y' channel binding flag (we offer no -PLUS mechanism)", async () => {
    const server = new ScramServer("SCRAM-SHA-256", accounts.lookup);
    const client = new ScramClient("SCRAM-SHA-256", "juliet", "r0meo!", { gs2Flag: "y" });
    const clientFinal = client.final(await server.start(client.first()));
    assert.match(clientFinal, /^c=eSws,/); // base64("y,,")
    client.verify(server.finish(clientFinal));
  });

  it("accepts messages as UTF-8 Buffers", async () => {
    const server = new ScramServer("SCRAM-SHA-1", accounts.lookup);
    const client = new ScramClient("SCRAM-SHA-1", "juliet", "r0meo!");
    const serverFirst = await server.start(Buffer.from(client.first()));
    client.verify(server.finish(Buffer.from(client.final(serverFirst))));
  });

  it("accepts optional extensions in client-first", async () => {
    const server = new ScramServer("SCRAM-SHA-1", accounts.lookup);
    const client = new ScramClient("SCRAM-SHA-1", "juliet", "r0meo!");
    const serverFirst = await server.start(`${client.first()},x=whatever`);
    // The client's AuthMessage would not include the extension, so only check it was accepted.
    assert.match(serverFirst, /^r=/);
  });
});

describe("ScramServer: usernames", () => {
  it("decodes =2C and =3D", async () => {
    const server = await login("SCRAM-SHA-256", "a,b=c", "commas");
    assert.equal(server.username, "a,b=c");
  });

  it("the client escapes them", () => {
    const client = new ScramClient("SCRAM-SHA-1", "a,b=c", "x", { nonce: "n0nce" });
    assert.equal(client.first(), "n,,n=a=2Cb=3Dc,r=n0nce");
  });

  it("decodes escapes case-insensitively and hands the decoded name to lookup", async () => {
    const seen: string[] = [];
    const server = new ScramServer("SCRAM-SHA-1", async (u) => (seen.push(u), null));
    await server.start("n,,n=x=2cy=3dz=3D=2C,r=abc");
    assert.deepEqual(seen, ["x,y=z=,"]);
  });

  it("SASLpreps the username before lookup", async () => {
    const server = await login("SCRAM-SHA-1", "I\u00A0\u00ADX", "spaces");
    assert.equal(server.username, "I X");
    const seen: string[] = [];
    await new ScramServer("SCRAM-SHA-1", async (u) => (seen.push(u), null)).start("n,,n=\u2168,r=abc");
    assert.deepEqual(seen, ["IX"]);
  });

  it("rejects bad escapes and prohibited characters", async () => {
    for (const msg of ["n,,n=a=2Xb,r=abc", "n,,n=a=,r=abc", "n,,n==3,r=abc", "n,,n=bell\u0007,r=abc", "n,,n=\u00AD,r=abc", "n,,n=,r=abc"]) {
      await assert.rejects(new ScramServer("SCRAM-SHA-1", accounts.lookup).start(msg), saslError("malformed-request"), msg);
    }
  });

  it("decodes the authzid escapes", async () => {
    const server = new ScramServer("SCRAM-SHA-1", accounts.lookup);
    const client = new ScramClient("SCRAM-SHA-1", "juliet", "r0meo!", { authzid: "we,ird=jid" });
    assert.match(client.first(), /^n,a=we=2Cird=3Djid,/);
    client.verify(server.finish(client.final(await server.start(client.first()))));
    assert.equal(server.authzid, "we,ird=jid");
  });
});

describe("ScramServer: unknown users look like wrong passwords", () => {
  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: server-first is normal and the failure comes at finish`, async () => {
      const server = new ScramServer(mechanism, accounts.lookup);
      const client = new ScramClient(mechanism, "romeo", "anything");
      const serverFirst = await server.start(client.first());
      const m = /^r=([^,]+),s=([^,]+),i=(\d+)$/.exec(serverFirst);
      assert.ok(m, serverFirst);
      assert.ok(m[1]!.startsWith(client.clientNonce));
      assert.equal(Buffer.from(m[2]!, "base64").length, 16);
      assert.equal(m[3], "4096");
      assert.equal(server.attemptedUsername, "romeo");
      const clientFinal = client.final(serverFirst);
      let unknownErr: unknown;
      try {
        server.finish(clientFinal);
      } catch (err) {
        unknownErr = err;
      }
      assert.ok(saslError("not-authorized")(unknownErr));

      const wrong = await started(mechanism, "bad password");
      let wrongErr: unknown;
      try {
        wrong.server.finish(wrong.clientFinal);
      } catch (err) {
        wrongErr = err;
      }
      assert.ok(wrongErr instanceof SaslError && unknownErr instanceof SaslError);
      assert.equal(unknownErr.message, wrongErr.message);
      assert.equal(unknownErr.condition, wrongErr.condition);
    });
  }

  it("gives a stable salt per username and mechanism", async () => {
    const salt = async (mechanism: ScramMechanism, user: string, opts: ScramServerOptions = {}) =>
      /,s=([^,]+),/.exec(await new ScramServer(mechanism, accounts.lookup, opts).start(`n,,n=${user},r=abc`))![1];
    assert.equal(await salt("SCRAM-SHA-1", "romeo"), await salt("SCRAM-SHA-1", "romeo"));
    assert.notEqual(await salt("SCRAM-SHA-1", "romeo"), await salt("SCRAM-SHA-1", "mercutio"));
    assert.notEqual(await salt("SCRAM-SHA-1", "romeo"), await salt("SCRAM-SHA-256", "romeo"));
    // A shared secret makes every process in the farm answer alike.
    const secret = Buffer.alloc(32, 9);
    assert.equal(await salt("SCRAM-SHA-1", "romeo", { secret }), await salt("SCRAM-SHA-1", "romeo", { secret: Buffer.alloc(32, 9) }));
    assert.notEqual(await salt("SCRAM-SHA-1", "romeo", { secret }), await salt("SCRAM-SHA-1", "romeo"));
  });

  it("shows the configured iteration count for unknown users", async () => {
    const server = new ScramServer("SCRAM-SHA-256", accounts.lookup, { unknownUserIterations: 10000 });
    assert.match(await server.start("n,,n=nobody,r=abc"), /,i=10000$/);
  });

  it("treats a credential for another mechanism as no account", async () => {
    const sha1 = deriveCredential("SCRAM-SHA-1", "pw");
    await assert.rejects(login("SCRAM-SHA-256", "x", "pw", {}, async () => sha1), saslError("not-authorized"));
  });
});

describe("ScramServer: tampering", () => {
  it("rejects a modified nonce", async () => {
    const { server, clientFinal } = await started();
    const tampered = clientFinal.replace(/,r=([^,]+),/, (_, n: string) => `,r=${n}x,`);
    assert.throws(() => server.finish(tampered), saslError("not-authorized", /nonce/));
  });

  it("rejects a nonce that drops the server part", async () => {
    const { server, client, clientFinal } = await started();
    const tampered = clientFinal.replace(/,r=([^,]+),/, `,r=${client.clientNonce},`);
    assert.throws(() => server.finish(tampered), saslError("not-authorized"));
  });

  it("rejects channel binding data that does not match the GS2 header", async () => {
    // "y,,", "p=tls-unique,,", "n,a=x," and nothing at all, each valid base64.
    for (const cb of ["eSws", "cD10bHMtdW5pcXVlLCw=", "bixhPXgs", ""]) {
      const { server, clientFinal } = await started();
      assert.throws(() => server.finish(clientFinal.replace("c=biws", `c=${cb}`)), saslError("not-authorized", /channel binding/), cb);
    }
  });

  it("rejects a flipped proof bit", async () => {
    const { server, clientFinal } = await started();
    const proof = Buffer.from(/,p=(.+)$/.exec(clientFinal)![1]!, "base64");
    proof[0]! ^= 1;
    assert.throws(() => server.finish(clientFinal.replace(/p=.+$/, `p=${proof.toString("base64")}`)), saslError("not-authorized"));
  });

  it("rejects a proof computed for a different AuthMessage", async () => {
    const a = await started();
    const b = await started();
    const proofB = /,p=(.+)$/.exec(b.clientFinal)![1]!;
    assert.throws(() => a.server.finish(a.clientFinal.replace(/p=.+$/, `p=${proofB}`)), saslError("not-authorized"));
  });

  it("the client refuses a server that does not know the key", async () => {
    const { server, client, clientFinal } = await started();
    server.finish(clientFinal);
    assert.throws(() => client.verify("v=" + Buffer.alloc(32).toString("base64")), /signature/);
    assert.throws(() => client.verify("e=invalid-proof"), /invalid-proof/);
  });

  it("the client refuses a server nonce that does not extend its own", () => {
    const client = new ScramClient("SCRAM-SHA-1", "u", "p", { nonce: "abc" });
    assert.throws(() => client.final("r=xyz123,s=QSXCR+Q6sek8bf92,i=4096"), saslError("malformed-request"));
    assert.throws(() => client.final("r=abc,s=QSXCR+Q6sek8bf92,i=4096"), saslError("malformed-request"));
    assert.throws(() => client.final("r=abcd,s=QSXCR+Q6sek8bf92,i=0"), saslError("malformed-request"));
    assert.throws(() => client.final("m=x,r=abcd,s=QSXCR+Q6sek8bf92,i=4096"), saslError("malformed-request"));
  });
});

describe("ScramServer: channel binding", () => {
  it("rejects gs2 'p=' with a clear error", async () => {
    for (const msg of ["p=tls-unique,,n=juliet,r=abc", "p=tls-exporter,a=juliet@example.com,n=juliet,r=abc"]) {
      await assert.rejects(
        new ScramServer("SCRAM-SHA-256", accounts.lookup).start(msg),
        saslError("malformed-request", /channel binding.*not supported/),
      );
    }
  });

  it("does not consult the account store for a p= request", async () => {
    const { lookup, seen } = store({});
    await assert.rejects(new ScramServer("SCRAM-SHA-1", lookup).start("p=tls-unique,,n=juliet,r=abc"));
    assert.deepEqual(seen, []);
  });
});

describe("ScramServer: malformed messages", () => {
  const badFirst: Array<[string, string]> = [
    ["empty", ""],
    ["no GS2 header", "n=juliet,r=abc"],
    ["unknown cbind flag", "x,,n=juliet,r=abc"],
    ["incomplete GS2 header", "n,"],
    ["authzid without a=", "n,juliet,n=juliet,r=abc"],
    ["empty authzid", "n,a=,n=juliet,r=abc"],
    ["missing username", "n,,r=abc"],
    ["missing nonce", "n,,n=juliet"],
    ["empty nonce", "n,,n=juliet,r="],
    ["comma in nonce", "n,,n=juliet,r=ab,c"],
    ["non-printable nonce", "n,,n=juliet,r=ab\u00e9c"],
    ["space in nonce", "n,,n=juliet,r=ab c"],
    ["m= extension first", "n,,m=ext,n=juliet,r=abc"],
    ["m= extension later", "n,,n=juliet,r=abc,m=ext"],
    ["malformed extension", "n,,n=juliet,r=abc,xy=1"],
    ["empty extension", "n,,n=juliet,r=abc,"],
    ["NUL", "n,,n=juliet,r=abc\u0000"],
    ["attributes out of order", "n,,r=abc,n=juliet"],
  ];
  for (const [name, msg] of badFirst) {
    it(`client-first: ${name} -> malformed-request`, async () => {
      await assert.rejects(new ScramServer("SCRAM-SHA-1", accounts.lookup).start(msg), saslError("malformed-request"));
    });
  }

  it("client-first: invalid UTF-8 -> malformed-request", async () => {
    const bytes = Buffer.concat([Buffer.from("n,,n=jul"), Buffer.from([0xc3, 0x28]), Buffer.from(",r=abc")]);
    await assert.rejects(new ScramServer("SCRAM-SHA-1", accounts.lookup).start(bytes), saslError("malformed-request", /UTF-8/));
  });

  const badFinal: Array<[string, (f: string) => string]> = [
    ["missing proof", (f) => f.replace(/,p=.+$/, "")],
    ["proof not last", (f) => `${f},x=1`],
    ["missing channel binding", (f) => f.replace(/^c=biws,/, "")],
    ["missing nonce", (f) => f.replace(/,r=[^,]+/, "")],
    ["bad base64 in proof", (f) => f.replace(/p=.+$/, "p=!!notbase64!!")],
    ["non-canonical base64 in proof", (f) => f.replace(/=$/, "")],
    ["bad base64 in channel binding", (f) => f.replace("c=biws", "c=biw")],
    ["proof too short", (f) => f.replace(/p=.+$/, "p=AAAA")],
    ["m= extension", (f) => f.replace(",p=", ",m=1,p=")],
    ["malformed extension", (f) => f.replace(",p=", ",xx,p=")],
    ["no attributes at all", () => "garbage"],
    ["NUL", (f) => f.replace("c=biws", "c=biws\u0000")],
  ];
  for (const [name, change] of badFinal) {
    it(`client-final: ${name} -> malformed-request`, async () => {
      const { server, clientFinal } = await started("SCRAM-SHA-1");
      const bad = change(clientFinal);
      assert.notEqual(bad, clientFinal);
      assert.throws(() => server.finish(bad), saslError("malformed-request"), bad);
    });
  }

  it("client-final: an inserted optional extension parses but breaks the proof", async () => {
    const { server, clientFinal } = await started("SCRAM-SHA-1");
    // The extension is part of the AuthMessage, so the client's proof no longer matches.
    assert.throws(() => server.finish(clientFinal.replace(",p=", ",x=1,p=")), saslError("not-authorized"));
  });
});

describe("ScramServer: lifecycle and store errors", () => {
  it("rejects an unknown mechanism name with invalid-mechanism", () => {
    assert.throws(() => new ScramServer("SCRAM-SHA-512" as ScramMechanism, accounts.lookup), saslError("invalid-mechanism"));
  });

  it("maps a failing lookup to temporary-auth-failure", async () => {
    const server = new ScramServer("SCRAM-SHA-1", async () => {
      throw new Error("xdb down");
    });
    await assert.rejects(server.start("n,,n=juliet,r=abc"), (err: unknown) => {
      saslError("temporary-auth-failure")(err);
      assert.equal(((err as Error).cause as Error).message, "xdb down");
      return true;
    });
  });

  it("maps a corrupt stored credential to temporary-auth-failure", async () => {
    const cred = { ...deriveCredential("SCRAM-SHA-1", "pw"), storedKey: "AAAA" };
    await assert.rejects(new ScramServer("SCRAM-SHA-1", async () => cred).start("n,,n=x,r=abc"), saslError("temporary-auth-failure"));
  });

  it("refuses messages out of order and after failure", async () => {
    const fresh = new ScramServer("SCRAM-SHA-1", accounts.lookup);
    assert.throws(() => fresh.finish("c=biws,r=abc,p=AAAA"), saslError("malformed-request"));

    const { server, clientFinal } = await started();
    await assert.rejects(server.start("n,,n=juliet,r=abc"), saslError("malformed-request"));
    assert.throws(() => server.finish(clientFinal.replace(/p=.+$/, "p=AAAA")), saslError("malformed-request"));
    // One failure ends the exchange: even the right proof is refused afterwards.
    assert.throws(() => server.finish(clientFinal), saslError("malformed-request"));
  });

  it("refuses a second finish after success", async () => {
    const { server, clientFinal } = await started();
    server.finish(clientFinal);
    assert.throws(() => server.finish(clientFinal), saslError("malformed-request"));
    assert.equal(server.authenticated, true);
  });

  it("refuses a finish while the lookup is still pending", async () => {
    let release!: (c: ScramCredential | null) => void;
    const server = new ScramServer("SCRAM-SHA-1", () => new Promise((r) => (release = r)));
    const first = server.start("n,,n=juliet,r=abc");
    assert.throws(() => server.finish("c=biws,r=abc,p=AAAA"), saslError("malformed-request"));
    release(null);
    assert.match(await first, /^r=abc/);
  });

  it("does not reveal the username before success", async () => {
    const { server, clientFinal } = await started();
    assert.throws(() => server.username, /not succeeded/);
    assert.throws(() => server.authzid, /not succeeded/);
    assert.equal(server.authenticated, false);
    server.finish(clientFinal);
    assert.equal(server.username, "juliet");
  });

  it("validates the serverNonce test hook", () => {
    assert.throws(() => new ScramServer("SCRAM-SHA-1", accounts.lookup, { serverNonce: "a,b" }), RangeError);
  });
});
