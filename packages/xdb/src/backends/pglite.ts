import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { pgliteDb, type DbHandle } from "../db.js";
import { DataDirInUseError } from "../errors.js";
import { migrate } from "../migrations/index.js";
import { ExclusiveSqlStorage } from "../exclusive-storage.js";
import { PlainSetBatcher } from "../plain-sets.js";
import type { Storage } from "../storage.js";

// PGlite does not notice a second process opening the same directory, and
// two writers would corrupt it, so xdb keeps its own lock file in there
// (PostgreSQL ignores files it does not know in its data directory).
const LOCK_FILE = "xdb.lock";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const lock = join(dir, LOCK_FILE);
  const mine = `${process.pid}\n`;
  // Written aside then hard-linked into place: link() creates the lock
  // atomically with its content, so nobody ever reads a half-written pid.
  const temp = join(dir, `${LOCK_FILE}.${process.pid}.${Date.now()}`);
  await writeFile(temp, mine);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, lock);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 2) throw err;
      }
      const pid = Number.parseInt(await readFile(lock, "utf8").catch(() => ""), 10);
      // Our own pid counts as alive: a second PGlite on the same directory in
      // this process would corrupt it just the same.
      if (pid > 0 && isAlive(pid)) throw new DataDirInUseError(dir, pid);
      // Left behind by a process that died without closing.
      await rm(lock, { force: true });
    }
  } finally {
    await rm(temp, { force: true });
  }
  return async () => {
    const current = await readFile(lock, "utf8").catch(() => "");
    if (current === mine) await rm(lock, { force: true });
  };
}

// PGlite's defaults size PostgreSQL for a desktop (shared_buffers 160 MB),
// which made the embedded xdb the largest process of the farm at start.
// A small farm's working set is far smaller: 16 MB of buffers, with the
// operating system's page cache behind them, is what the embedded default
// needs (docs/performance.md, "Memory at start"). Farms that outgrow it run
// on PostgreSQL. -c on the command line wins over postgresql.conf.
const SETTINGS = ["shared_buffers=16MB", "wal_buffers=1MB", "temp_buffers=1MB"];

function startParams(): string[] | undefined {
  // PGlite replaces its default parameters with startParams, so ours are
  // appended to them; an older or newer PGlite without the static list gets
  // its defaults untouched rather than a half-configured server.
  const defaults = (PGlite as unknown as { defaultStartParams?: unknown }).defaultStartParams;
  if (!Array.isArray(defaults)) return undefined;
  return [...(defaults as string[]), ...SETTINGS.flatMap((s) => ["-c", s])];
}

/**
 * initdb runs in a child process of its own: its WebAssembly instance grows
 * to ~550 MB, and V8 does not give that back to the system after it is
 * collected, so creating the database in the xdb itself left a fresh farm's
 * xdb at ~750 MB for its whole life.
 */
async function createDataDir(dir: string): Promise<void> {
  const script = fileURLToPath(new URL("./pglite-init.js", import.meta.url));
  const child = spawn(process.execPath, [script, dir], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const code = await new Promise<number | null>((res, rej) => {
    child.once("error", rej);
    child.once("exit", res);
  });
  if (code !== 0) throw new Error(`creating the PGlite database in ${dir} failed (exit ${code}): ${stderr.trim().slice(-2000)}`);
}

/** Opens (creating if needed) a PGlite database in dataDir. One process per directory. */
export async function openPglite(dataDir: string): Promise<Storage> {
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true });
  const unlock = await lockDataDir(dir);
  let pg: PGlite | undefined;
  try {
    if (!existsSync(join(dir, "PG_VERSION"))) await createDataDir(dir);
    pg = await PGlite.create(dir, { startParams: startParams() });
    const inner = pgliteDb(pg);
    await migrate(inner);
    // Plain sets of one turn go in one statement, issued before any other
    // statement so that order holds (plain-sets.ts).
    const plainSets = new PlainSetBatcher(inner);
    const handle: DbHandle = {
      serial: true,
      query: (sql, params) => (plainSets.flush(), inner.query(sql, params)),
      exec: (sql) => (plainSets.flush(), inner.exec(sql)),
      transaction: (fn) => (plainSets.flush(), inner.transaction(fn)),
      async close() {
        try {
          plainSets.flush();
          await inner.close();
        } finally {
          await unlock();
        }
      },
    };
    // This process holds the directory's lock, so nobody else writes: the
    // credentials can be served from memory (exclusive-storage.ts).
    const storage = new ExclusiveSqlStorage(handle);
    storage.batchPlainSets(plainSets);
    await storage.warm();
    return storage;
  } catch (err) {
    await pg?.close().catch(() => {});
    await unlock();
    throw err;
  }
}
