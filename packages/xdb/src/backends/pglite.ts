import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { pgliteDb, type DbHandle } from "../db.js";
import { DataDirInUseError } from "../errors.js";
import { migrate } from "../migrations/index.js";
import { ExclusiveSqlStorage } from "../exclusive-storage.js";
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

/** Opens (creating if needed) a PGlite database in dataDir. One process per directory. */
export async function openPglite(dataDir: string): Promise<Storage> {
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true });
  const unlock = await lockDataDir(dir);
  let pg: PGlite | undefined;
  try {
    pg = await PGlite.create(dir);
    const inner = pgliteDb(pg);
    await migrate(inner);
    const handle: DbHandle = {
      query: inner.query,
      exec: inner.exec,
      transaction: inner.transaction,
      async close() {
        try {
          await inner.close();
        } finally {
          await unlock();
        }
      },
    };
    // This process holds the directory's lock, so nobody else writes: the
    // credentials can be served from memory (exclusive-storage.ts).
    const storage = new ExclusiveSqlStorage(handle);
    await storage.warm();
    return storage;
  } catch (err) {
    await pg?.close().catch(() => {});
    await unlock();
    throw err;
  }
}
