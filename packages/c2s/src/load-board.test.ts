import { after, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { LoadBoard } from "./load-board.js";

const REDIS = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/4";

test("redirects only from a c2s clearly above its share, to the least loaded one; a c2s that leaves drops out", async () => {
  const run = randomBytes(3).toString("hex");
  const load: Record<string, number> = { a: 0, b: 0, c: 0 };
  const boards = ["a", "b", "c"].map((id) => new LoadBoard({
    redisUrl: REDIS, instance: `${run}-${id}`, address: `${id}.test:5222`, margin: 0.2, minConnections: 0, intervalMs: 200, connections: () => load[id]!,
  }));
  after(async () => {
    for (const b of boards) await b.close();
  });
  // Twice: the first round publishes everyone's figures, the second reads them all.
  const refreshAll = async (): Promise<void> => {
    await Promise.all(boards.map((b) => b.refresh()));
    await Promise.all(boards.map((b) => b.refresh()));
  };
  const [a, b, c] = boards as [LoadBoard, LoadBoard, LoadBoard];
  await refreshAll();
  assert.ok(a.peers.filter((p) => p.instance.startsWith(run)).length >= 2, "each c2s sees the others");

  // balanced: nobody redirects
  Object.assign(load, { a: 30, b: 30, c: 30 });
  await refreshAll();
  assert.equal(a.redirectTarget(), undefined);
  assert.equal(b.redirectTarget(), undefined);

  // a above its share: its new clients go to the least loaded, c
  Object.assign(load, { a: 60, b: 20, c: 10 });
  await refreshAll();
  assert.equal(a.redirectTarget(), "c.test:5222");
  assert.equal(b.redirectTarget(), undefined, "b is below the share");
  assert.equal(c.redirectTarget(), undefined, "c never sends back: no loops");

  // slightly above the share but within the margin: no redirect
  Object.assign(load, { a: 33, b: 30, c: 27 });
  await refreshAll();
  assert.equal(a.redirectTarget(), undefined);

  // c leaves: its entry goes (a crashed one would expire with its TTL) and nobody sends clients to it
  Object.assign(load, { a: 60, b: 20, c: 0 });
  await c.close();
  await Promise.all([a.refresh(), b.refresh()]);
  await Promise.all([a.refresh(), b.refresh()]);
  assert.ok(!a.peers.some((p) => p.address === "c.test:5222"));
  assert.equal(a.redirectTarget(), "b.test:5222");
});

test("between two refreshes, a c2s counts the clients it sends each peer, so a burst is spread and stops at the share", async (t) => {
  const run = randomBytes(3).toString("hex");
  const load: Record<string, number> = { a: 60, b: 20, c: 10 };
  // No timer refreshes here: the figures stay as old as they get between two real refreshes.
  const boards = ["a", "b", "c"].map((id) => new LoadBoard({
    redisUrl: REDIS, instance: `${run}-${id}`, address: `${id}.test:5222`, margin: 0.2, minConnections: 0, intervalMs: 60_000, connections: () => load[id]!,
  }));
  t.after(async () => {
    for (const b of boards) await b.close();
  });
  await Promise.all(boards.map((b) => b.refresh()));
  await Promise.all(boards.map((b) => b.refresh()));
  const a = boards[0]!;
  const sent: Record<string, number> = {};
  let calls = 0;
  for (let target = a.redirectTarget(); target !== undefined && calls < 1000; target = a.redirectTarget()) {
    sent[target] = (sent[target] ?? 0) + 1;
    calls++;
  }
  assert.ok(calls < 1000, "a stops redirecting once its view of the others reaches the share");
  // c (10) takes clients until it looks as loaded as b (20), then both do.
  assert.ok((sent["c.test:5222"] ?? 0) > 10 && (sent["b.test:5222"] ?? 0) > 0, JSON.stringify(sent));
  // The next refresh brings the real figures back: c is the least loaded again.
  await a.refresh();
  assert.equal(a.redirectTarget(), "c.test:5222");
});

test("below minConnections a c2s keeps every client, however the load is spread", async (t) => {
  const run = randomBytes(3).toString("hex");
  const load: Record<string, number> = { a: 40, b: 0 };
  const boards = ["a", "b"].map((id) => new LoadBoard({
    redisUrl: REDIS, instance: `${run}-${id}`, address: `${id}.test:5222`, margin: 0.2, minConnections: 50, intervalMs: 60_000, connections: () => load[id]!,
  }));
  t.after(async () => {
    for (const b of boards) await b.close();
  });
  const refreshAll = async (): Promise<void> => {
    await Promise.all(boards.map((b) => b.refresh()));
    await Promise.all(boards.map((b) => b.refresh()));
  };
  await refreshAll();
  const a = boards[0]!;
  assert.equal(a.redirectTarget(), undefined, "40 clients against 0: still below the floor");
  load.a = 60;
  await refreshAll();
  assert.equal(a.redirectTarget(), "b.test:5222", "above the floor and above its share");
});
