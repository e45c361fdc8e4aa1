/**
 * Files in a directory: `DIR/ab/ID` (the first two characters of the id
 * spread them over 4096 subdirectories) and `DIR/ab/ID.json` (metadata).
 * A file is written to a temporary name and linked into place, which fails
 * when the id exists: two PUTs of one slot cannot both succeed. Paths are
 * made from ids checked against FILE_ID only, never from names clients
 * chose, so nothing can reach outside DIR.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { link, mkdir, readFile, readdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SizeError, type FileBackend, type FileMeta, type StoredFile } from "./backend.js";
import { FILE_ID } from "./slot-token.js";

export function countingLimit(size: number): Transform {
  let got = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      got += chunk.length;
      if (got > size) done(new SizeError(got, size));
      else done(null, chunk);
    },
    flush(done) {
      done(got === size ? null : new SizeError(got, size));
    },
  });
}

export class DirBackend implements FileBackend {
  private readonly root: string;

  constructor(path: string) {
    this.root = resolve(path);
  }

  private pathOf(id: string): string {
    if (!FILE_ID.test(id)) throw new Error("not a file id");
    return join(this.root, id.slice(0, 2), id);
  }

  async put(id: string, body: Readable, meta: FileMeta): Promise<"stored" | "exists"> {
    const path = this.pathOf(id);
    await mkdir(join(this.root, id.slice(0, 2)), { recursive: true });
    if (await this.exists(id)) return "exists";
    const tmp = `${path}.${randomBytes(6).toString("hex")}.part`;
    try {
      await pipeline(body, countingLimit(meta.size), createWriteStream(tmp, { flags: "wx", mode: 0o640 }));
      try {
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") return "exists";
        throw err;
      }
      const metaTmp = `${path}.json.${randomBytes(6).toString("hex")}.part`;
      await writeFile(metaTmp, JSON.stringify(meta), { mode: 0o640 });
      await rename(metaTmp, `${path}.json`);
      return "stored";
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  private async meta(id: string): Promise<FileMeta | undefined> {
    try {
      return JSON.parse(await readFile(`${this.pathOf(id)}.json`, "utf8")) as FileMeta;
    } catch {
      return undefined;
    }
  }

  async get(id: string, head = false): Promise<StoredFile | undefined> {
    if (!FILE_ID.test(id)) return undefined;
    // Metadata is written after the data: without it the upload is not finished.
    const meta = await this.meta(id);
    if (meta === undefined) return undefined;
    if (head) return { meta, body: Readable.from([]) };
    const body = createReadStream(this.pathOf(id));
    await new Promise<void>((ok, fail) => body.once("open", () => ok()).once("error", fail)).catch(() => undefined);
    if (body.destroyed) return undefined;
    return { meta, body };
  }

  async exists(id: string): Promise<boolean> {
    try {
      await stat(this.pathOf(id));
      return true;
    } catch {
      return false;
    }
  }

  async delete(id: string): Promise<void> {
    const path = this.pathOf(id);
    await unlink(`${path}.json`).catch(() => undefined);
    await unlink(path).catch(() => undefined);
  }

  async *olderThan(before: Date): AsyncIterable<{ id: string; meta: FileMeta | undefined }> {
    let dirs: string[];
    try {
      dirs = await readdir(this.root);
    } catch {
      return;
    }
    for (const d of dirs) {
      let names: string[];
      try {
        names = await readdir(join(this.root, d));
      } catch {
        continue;
      }
      for (const name of names) {
        if (!FILE_ID.test(name)) continue;
        const meta = await this.meta(name);
        const created = meta ? Date.parse(meta.created) : (await stat(join(this.root, d, name)).catch(() => undefined))?.mtimeMs;
        if (created !== undefined && created < before.getTime()) yield { id: name, meta };
      }
    }
  }
}
