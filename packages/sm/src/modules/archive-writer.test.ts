import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { startSmFarm, type SmTestFarm } from "../testing.js";
import { ArchiveStore } from "../module-store.js";
import { ArchiveWriter, type ArchiveWriterOptions } from "@jabberfarm/xdb";
import { archiveStore } from "./module-testing.js";

const OPTS: ArchiveWriterOptions = { batchMaxItems: 500, batchMaxBytes: 256 * 1024, maxItems: 10_000, maxItemBytes: 64 * 1024, trimEvery: 100 };

describe("the archive's batched writes", () => {
  let farm: SmTestFarm;
  const users: string[] = [];
  before(async () => {
    farm = await startSmFarm();
    for (const u of ["w1", "w2", "w3", "w4"]) users.push(await farm.addUser(u));
  });
  after(async () => farm.stop());
  const writer = (store: string, opts: Partial<ArchiveWriterOptions> = {}) => new ArchiveWriter(archiveStore(farm, store), { ...OPTS, ...opts }, pino({ level: "silent" }));
  const values = async (store: string, user: string) => (await archiveStore(farm, store).query(user, { limit: 1000 })).items.map((i) => i.value);

  test("appends of one burst go in one write, each user's in order; later ones in the next batch", async () => {
    const w = writer("b1");
    const pending = [];
    for (let i = 0; i < 300; i++) pending.push(w.append({ user: users[i % 3]!, id: `m${i}`, with: "x@y", value: `${i}` }));
    assert.equal(new Set(pending).size, 1, "one promise for the batch");
    // Queued while the first batch is on its way: the next batch.
    await new Promise((r) => setImmediate(r));
    const later = w.append({ user: users[0]!, id: "late", with: "x@y", value: "late" });
    await Promise.all([...pending, later]);
    assert.equal(w.batches, 2);
    const u0 = await values("b1", users[0]!);
    assert.equal(u0.length, 101);
    assert.deepEqual(u0.slice(0, 3), ["0", "3", "6"]);
    assert.equal(u0.at(-1), "late");
  });

  test("a burst larger than a write goes in parts; written() waits for what was queued", async () => {
    const w = writer("b2", { batchMaxItems: 40 });
    for (let i = 0; i < 100; i++) void w.append({ user: users[1]!, id: `m${i}`, with: "x@y", value: `${i}` });
    await w.written();
    assert.equal(w.batches, 3);
    assert.deepEqual(await values("b2", users[1]!), Array.from({ length: 100 }, (_, i) => `${i}`));
  });

  test("the same appends again (a redelivered route) store nothing twice; the size limit is kept every trimEvery appends", async () => {
    const w = writer("b3", { maxItems: 5, trimEvery: 3 });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 4; i++) void w.append({ user: users[2]!, id: `m${i}`, with: "x@y", value: `${i}` });
      await w.written();
    }
    assert.deepEqual(await values("b3", users[2]!), ["0", "1", "2", "3"]);
    for (let i = 4; i < 20; i++) {
      void w.append({ user: users[2]!, id: `m${i}`, with: "x@y", value: `${i}` });
      await w.written();
    }
    const kept = await values("b3", users[2]!);
    assert.ok(kept.length <= 5 + 3, `at most the limit plus what ${3} appends bring: ${kept.length}`);
    assert.equal(kept.at(-1), "19");
  });

  test("the queue is bounded: beyond 100 batches' worth, appends are not archived (and nothing waits for them)", async () => {
    const w = writer("b5", { batchMaxItems: 2 });
    const all = [];
    for (let i = 0; i < 250; i++) all.push(w.append({ user: users[3]!, id: `q${i}`, with: "x@y", value: `${i}` }));
    await Promise.all(all);
    assert.equal(w.dropped, 50);
    assert.equal((await values("b5", users[3]!)).length, 200);
  });

  test("a failed batch is written once more; its appends are stored once", async () => {
    let calls = 0;
    // The first write happens but its answer is lost (a timeout after the commit): the retry finds duplicates.
    const flaky = new Proxy(farm.storage, {
      get(target, prop, receiver) {
        if (prop !== "storeWrite") return Reflect.get(target, prop, receiver) as unknown;
        return async (p: Parameters<typeof target.storeWrite>[0]) => {
          const r = await target.storeWrite(p);
          if (++calls === 1) throw new Error("answer lost");
          return r;
        };
      },
    });
    const w = new ArchiveWriter(new ArchiveStore(flaky, "b6"), OPTS, pino({ level: "silent" }));
    for (let i = 0; i < 3; i++) void w.append({ user: users[3]!, id: `r${i}`, with: "x@y", value: `${i}` });
    await w.written();
    assert.equal(calls, 2);
    assert.deepEqual(await values("b6", users[3]!), ["0", "1", "2"]);
  });

  test("an append for an account that is gone does not fail the others", async () => {
    const w = writer("b4");
    void w.append({ user: "ghost@localhost", id: "g", with: "x@y", value: "g" });
    await w.append({ user: users[3]!, id: "ok", with: "x@y", value: "ok" });
    assert.deepEqual(await values("b4", users[3]!), ["ok"]);
  });
});
