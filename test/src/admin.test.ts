/**
 * Accounts are managed with `jabberfarm adduser/passwd/deluser` while the
 * farm runs (through the router to xdb), the operator's status, sessions
 * and kick work on the embedded farm, and the farm restarts a child process
 * that dies.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Farm } from "./farm.js";
import { LibraryClient } from "./clients.js";

describe("operating an embedded farm", () => {
  let farm: Farm;
  before(async () => {
    farm = await Farm.start();
  });
  after(async () => {
    assert.equal(await farm.stop(), 0);
  });

  test("adduser, passwd and deluser work while the farm runs", async () => {
    await farm.addUser("gina@localhost", "first-pw");
    const dup = await farm.admin(["adduser", "gina@localhost"], "x\n");
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists/);
    const c = await LibraryClient.login(farm.ports.c2s, "gina", "first-pw", "a");
    await c.stop();
    const pw = await farm.admin(["passwd", "gina@localhost"], "second-pw\n");
    assert.equal(pw.code, 0, pw.stderr);
    const old = new LibraryClient(farm.ports.c2s, "gina", "first-pw", "b");
    await assert.rejects(old.xmpp.start());
    await old.stop();
    const fresh = await LibraryClient.login(farm.ports.c2s, "gina", "second-pw", "c");
    await fresh.stop();
    const del = await farm.admin(["deluser", "gina@localhost"]);
    assert.equal(del.code, 0, del.stderr);
    const gone = new LibraryClient(farm.ports.c2s, "gina", "second-pw", "d");
    await assert.rejects(gone.xmpp.start());
    await gone.stop();
    const bad = await farm.admin(["adduser", "not a jid@@"], "pw\n");
    assert.equal(bad.code, 1);
  });

  test("status, sessions and kick on the embedded farm (one of each)", async () => {
    await farm.addUser("ivan@localhost", "ivan-pw");
    const c = await LibraryClient.login(farm.ports.c2s, "ivan", "ivan-pw", "desk");
    const kicked = new Promise<string | undefined>((resolve) => c.xmpp.on("error", (e: { condition?: string }) => resolve(e.condition)));
    const [status, sessions] = await Promise.all([farm.admin(["status"]), farm.admin(["sessions", "ivan@localhost"])]);
    assert.equal(status.code, 0, status.stderr);
    for (const row of [/^ {2}router-1 +127\.0\.0\.1:\d+ .* MiB +\d+$/m, /^ {2}c2s\/c2s-1 .* 1 client, 1 session +1\/1 /m, /^ {2}localhost\/sm-1 .* 1 session, 1 user +1\/1 /m, /^ {2}xdb\/xdb-1 .* storage pglite$/m]) {
      assert.match(status.stdout, row);
    }
    assert.match(sessions.stdout, /ivan@localhost\/desk +c2s-1\.\S+ +c2s\/c2s-1 +localhost\/sm-1 +no +0 /);
    const kick = await farm.admin(["kick", "ivan@localhost/desk"]);
    assert.equal(kick.code, 0, kick.stderr);
    assert.equal(await kicked, "policy-violation");
    await c.stop();
  });

  test("a child that dies is restarted, and the restart is logged", async () => {
    await farm.addUser("hank@localhost", "hank-pw");
    const pid = farm.childPid("sm");
    assert.ok(pid);
    process.kill(pid, "SIGKILL");
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !farm.logs.some((l) => l.msg === "child exited; restarting" && l.child === "sm")) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(farm.logs.some((l) => l.msg === "child exited; restarting" && l.child === "sm"));
    // the new sm serves: a login completes (binding needs the sm)
    let ok = false;
    while (!ok && Date.now() < deadline) {
      try {
        const c = await LibraryClient.login(farm.ports.c2s, "hank", "hank-pw", "r");
        await c.stop();
        ok = true;
      } catch {
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    assert.ok(ok, "a client can log in after the sm was restarted");
  });
});
