import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { openPostgres } from "./backends/postgres.js";
import { pgPoolDb } from "./db.js";
import { migrate, migrations } from "./migrations/index.js";
import { openStorage } from "./open.js";
import { SqlStorage } from "./sql-storage.js";
import { storageSuite } from "./storage-suite.js";
import { expectVersion1DataMoved, writeVersion1Data } from "./store-suite.js";

// The local test server (see .ci/run); override to point elsewhere.
const url = process.env["XDB_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

function freshSchema(): string {
  return `xdb_test_${process.pid}_${randomBytes(4).toString("hex")}`;
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

const suiteSchema = freshSchema();
storageSuite(
  "postgres",
  () => openPostgres(url, { schema: suiteSchema, poolSize: 8 }),
  () => dropSchema(suiteSchema),
);

describe("postgres backend", () => {
  const schemas: string[] = [];
  const schema = (): string => {
    const s = freshSchema();
    schemas.push(s);
    return s;
  };
  after(async () => {
    for (const s of schemas) await dropSchema(s);
  });

  test("processes starting together migrate once and share one quota", async () => {
    const name = schema();
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => openPostgres(url, { schema: name, poolSize: 4 })));
    assert.ok(a instanceof SqlStorage && b instanceof SqlStorage && c instanceof SqlStorage);
    try {
      const rows = await a.db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
      assert.deepEqual(
        rows.map((r) => r.version),
        migrations.map((m) => m.version),
      );
      assert.equal(await a.createAccount("shared@example.org", []), true);
      assert.equal(await b.accountExists("shared@example.org"), true);
      // Three pools, so truly different connections competing for the row lock.
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => [a, b, c][i % 3]!.storeWrite({
          kind: "archive.append", user: "shared@example.org", store: "offline", value: `<m n='${i}'/>`, quota: { maxItems: 25 },
        })),
      );
      assert.equal(results.filter((r) => r.ok).length, 25);
      const stored = await c.storeRead({ kind: "archive.count", user: "shared@example.org", store: "offline" });
      assert.equal("count" in stored && stored.count, 25);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  test("a database of the old schema upgrades in place", async () => {
    const name = schema();
    const pool = new pg.Pool({ connectionString: url, max: 1, options: `-c search_path=${name}` });
    const db = pgPoolDb(pool);
    try {
      await db.query(`CREATE SCHEMA ${name}`);
      await migrate(db, migrations.slice(0, 1));
      await writeVersion1Data(db);
    } finally {
      await db.close();
    }
    const s = await openPostgres(url, { schema: name });
    try {
      await expectVersion1DataMoved(s);
    } finally {
      await s.close();
    }
  });

  test("the schema is used on every pooled connection", async () => {
    const name = schema();
    const s = await openPostgres(url, { schema: name, poolSize: 5 });
    assert.ok(s instanceof SqlStorage);
    try {
      // Hold several connections at once so the pool cannot reuse a single one.
      const seen = await Promise.all(
        Array.from({ length: 5 }, () =>
          s.db.transaction(async (tx) => {
            const [row] = await tx.query<{ schema: string; pid: number }>(
              "SELECT current_schema() AS schema, pg_backend_pid() AS pid, pg_sleep(0.05)::text",
            );
            return row!;
          }),
        ),
      );
      assert.equal(new Set(seen.map((r) => r.pid)).size, 5);
      for (const r of seen) assert.equal(r.schema, name);
      const [tables] = await s.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'accounts'",
        [name],
      );
      assert.equal(tables?.n, 1);
    } finally {
      await s.close();
    }
  });

  test("openStorage picks PostgreSQL when given a URL", async () => {
    const name = schema();
    const s = await openStorage({ databaseUrl: url, dataDir: "/nonexistent/never-created", schema: name });
    try {
      assert.ok(s instanceof SqlStorage);
      const [row] = await s.db.query<{ v: string }>("SELECT version() AS v");
      assert.doesNotMatch(row!.v, /PGlite/);
    } finally {
      await s.close();
    }
  });

  test("bad options are refused before connecting", async () => {
    await assert.rejects(openPostgres(url, { schema: "Bad-Name" }), RangeError);
    await assert.rejects(openPostgres(url, { schema: "x; drop table y" }), RangeError);
    await assert.rejects(openPostgres(url, { poolSize: 0 }), RangeError);
    await assert.rejects(openPostgres(`${url}?options=-c%20search_path%3Dx`, { schema: "fine" }), /options/);
  });

  test("a connection the server ends between two statements of a transaction fails that transaction, not the process", { timeout: 15_000 }, async () => {
    // What a PostgreSQL shutdown or restart does to a transaction in flight.
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    pool.on("error", () => {});
    // Not events.once: it would listen for 'error' itself, which is what this test is about.
    const ended: Array<Promise<void>> = [];
    pool.on("connect", (c) => ended.push(new Promise((resolve) => c.once("end", () => resolve()))));
    const db = pgPoolDb(pool);
    const killer = new pg.Client({ connectionString: url });
    await killer.connect();
    try {
      const failed = db.transaction(async (tx) => {
        const [row] = await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        await killer.query("SELECT pg_terminate_backend($1)", [row!.pid]);
        // The client has seen its connection end (and emitted 'error') while no statement of ours ran.
        await ended[0];
        await tx.query("SELECT 1");
      });
      await assert.rejects(failed, /terminat|not queryable|Connection/i);
      const [row] = await db.transaction((tx) => tx.query<{ one: number }>("SELECT 1 AS one"));
      assert.equal(row?.one, 1, "the pool opens a new connection for the next transaction");
    } finally {
      await killer.end();
      await db.close();
    }
  });

  test("an unreachable server fails the open", async () => {
    await assert.rejects(openPostgres("postgres://postgres@127.0.0.1:1/test"));
  });
});
