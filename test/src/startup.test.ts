/**
 * A farm as a new user starts it: `jabberfarm up` in one terminal, and at
 * once `jabberfarm adduser` in another, and a client as soon as the port
 * opens. The c2s listens only once it can serve (a router, an SM, an xdb),
 * and account commands wait for the farm's storage instead of failing with
 * "nothing serves 'xdb' right now".
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RawClient } from "./clients.js";
import { Farm, waitUntil } from "./farm.js";

test("adduser while the farm starts, and a client the moment the c2s port opens, both get in", { timeout: 180_000 }, async () => {
  // Embedded PGlite: the slowest xdb to start, so the widest gap to fall into.
  const farm = Farm.launch();
  try {
    // `up` writes its config first (with the routers' ports still unknown): the command finds the farm there.
    await waitUntil("up writes its config", 30_000, () => existsSync(join(farm.dataDir, "farm.generated.json")), 10);
    const early = farm.admin(["adduser", "early@localhost"], "early-pw\n");
    // The c2s's port, the moment it listens (its log line; the port is the kernel's pick).
    const listening = await farm.waitLog("the c2s listens", (l) => l.process === "c2s" && l.msg === "listening for clients" && l.kind === "starttls", 150_000, 0);
    const port = listening.port as number;
    const [client, onTime] = await Promise.all([
      RawClient.connect(port),
      farm.admin(["adduser", "ontime@localhost"], "ontime-pw\n"),
    ]);
    assert.equal(onTime.code, 0, `adduser the moment the port opened: ${onTime.stderr}`);
    const first = await early;
    assert.equal(first.code, 0, `adduser while the farm started: ${first.stderr}`);
    assert.match(first.stderr, /waiting up to \d+ s for the farm's (routers|storage)/, "it said what it waited for");
    // The client that connected at once logs in on that same connection.
    await client.logIn("ontime", "ontime-pw", "first");
    const other = await RawClient.login(port, "early", "early-pw", "second");
    other.socket.destroy();
    client.socket.destroy();
  } finally {
    await farm.stop();
  }
});
