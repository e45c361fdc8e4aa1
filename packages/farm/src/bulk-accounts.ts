/**
 * `jabberfarm import`, `export` and `adduser --from`: many accounts at once
 * (docs/operations.md, "Bulk accounts").
 *
 * A file is read twice on import: once to check all of it, so that a
 * mistake anywhere stops the command before anything is written, and once
 * to write it, a few hundred accounts per storage request (one transaction
 * each). An account that exists already is skipped, untouched: an
 * interrupted import is finished by running it again.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Storage } from "@jabberfarm/xdb";
import { accountJid } from "./admin.js";
import {
  EXPORTED_ARCHIVE_STORES, EXPORTED_KV_STORES, derivePasswords, pendingFromPie, type ExportedAccount, type PendingAccount,
} from "./account-records.js";
import { PIE_LIMITS, PieError, readPie, type PieLimits } from "./pie-read.js";
import { HOST_END, PIE_FOOTER, PIE_HEADER, hostStart, userXml } from "./pie-write.js";
import { ProgressBar, type ProgressOutput } from "./progress.js";

export interface BulkOptions {
  /** Where the progress bar and the per-account lines go (standard error). */
  out?: ProgressOutput;
  /** Most accounts per storage request. */
  batchAccounts?: number;
  /** Most characters of JSON per storage request: through a router it must fit a farm link (1 MiB) once escaped. */
  batchChars?: number;
  limits?: PieLimits;
}

export interface ImportSummary {
  /** Accounts the file holds. */
  total: number;
  created: number;
  /** There already (from an earlier run, or made otherwise): left as they were. */
  existed: number;
  /** Not importable as they are (a reason was printed for each). */
  skipped: number;
  /** Parts of `<user>` elements nothing imports, by name, with how many users had them. */
  ignored: Map<string, number>;
  seconds: number;
}

const DEFAULT_BATCH = 500;
const DEFAULT_BATCH_CHARS = 256 * 1024;

/** The files of an import: FILE itself, or every `*.xml` of a directory (prosody-migrator writes one per user). */
export function pieFiles(path: string): string[] {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new PieError(`${path}: no such file or directory`);
  }
  if (!isDir) return [path];
  const files = readdirSync(path).filter((f) => f.endsWith(".xml")).sort().map((f) => join(path, f));
  if (files.length === 0) throw new PieError(`${path}: a directory without any .xml file`);
  return files;
}

/** Writes accounts a batch at a time; the PBKDF2 of the next batch runs while the previous one is written. */
class BatchWriter {
  private batch: PendingAccount[] = [];
  private chars = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly storage: Storage, private readonly bar: ProgressBar, private readonly summary: ImportSummary,
    private readonly maxAccounts: number, private readonly maxChars: number,
  ) {}

  async add(a: PendingAccount): Promise<void> {
    const size = JSON.stringify(a.record).length + (a.password === undefined ? 0 : 600);
    if (this.batch.length > 0 && (this.batch.length >= this.maxAccounts || this.chars + size > this.maxChars)) await this.cut();
    this.batch.push(a);
    this.chars += size;
  }

  async flush(): Promise<void> {
    if (this.batch.length > 0) await this.cut();
    await this.writing;
  }

  private async cut(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    this.chars = 0;
    // Those there already cost no PBKDF2: a rerun after an interruption goes quickly over what was imported.
    const there = await Promise.all(batch.map((a) => this.storage.accountExists(a.record.user)));
    const todo = batch.filter((_, i) => !there[i]);
    this.summary.existed += batch.length - todo.length;
    this.bar.advance(batch.length - todo.length);
    const problems = await derivePasswords(todo);
    const ready: PendingAccount[] = [];
    todo.forEach((a, i) => {
      const problem = problems[i];
      if (problem === undefined) ready.push(a);
      else this.skip(a.record.user, a.where, problem);
    });
    // One write in flight: its outcome is counted before the next one starts.
    await this.writing;
    if (ready.length === 0) return;
    const write = this.storage.importAccounts(ready.map((a) => a.record)).then((outcome) => {
      for (const o of outcome) {
        if (o === "created") this.summary.created++;
        else this.summary.existed++;
      }
      this.bar.advance(outcome.length);
    });
    // Awaited at the next cut or at flush; until then its failure must not count as unhandled.
    write.catch(() => {});
    this.writing = write;
  }

  skip(user: string, where: string, why: string): void {
    this.summary.skipped++;
    this.bar.say(`skipped ${user} (${where}): ${why}`);
    this.bar.advance(1);
  }
}

function newSummary(): ImportSummary {
  return { total: 0, created: 0, existed: 0, skipped: 0, ignored: new Map(), seconds: 0 };
}

/**
 * Imports an XEP-0227 file (or a directory of them). Throws PieError, with
 * nothing written, when the file is not one the import can trust.
 */
export async function importPie(storage: Storage, path: string, opts: BulkOptions = {}): Promise<ImportSummary> {
  const started = Date.now();
  const files = pieFiles(path);
  const limits = opts.limits ?? PIE_LIMITS;
  const summary = newSummary();
  // First pass: all of it checked before anything is written; names once each.
  const seen = new Map<string, string>();
  for (const file of files) {
    for await (const u of readPie(file, limits)) {
      const before = seen.get(u.jid);
      if (before !== undefined) throw new PieError(`${u.where}: ${u.jid} again (first at ${before})`);
      seen.set(u.jid, u.where);
      for (const name of new Set(u.ignored)) summary.ignored.set(name, (summary.ignored.get(name) ?? 0) + 1);
    }
  }
  summary.total = seen.size;
  seen.clear();
  const bar = new ProgressBar("import", summary.total, opts.out);
  const writer = new BatchWriter(storage, bar, summary, opts.batchAccounts ?? DEFAULT_BATCH, opts.batchChars ?? DEFAULT_BATCH_CHARS);
  for (const file of files) {
    for await (const u of readPie(file, limits)) {
      const p = pendingFromPie(u);
      if ("skip" in p) writer.skip(u.jid, u.where, p.skip);
      else await writer.add(p);
    }
  }
  await writer.flush();
  bar.finish();
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

/**
 * The accounts of a `user password` file (`adduser --from`): one per line,
 * the user's name (or bare JID) then blanks then the password, which is the
 * rest of the line; `#` starts a comment line; blank lines are skipped.
 */
export function readUserLines(file: string, domain: string): PendingAccount[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new PieError(`${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  const out: PendingAccount[] = [];
  const seen = new Map<string, number>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    const where = `${file}:${i + 1}`;
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const m = /^\s*(\S+)[ \t]+(\S.*)$/.exec(line);
    if (!m) throw new PieError(`${where}: expected 'USER PASSWORD', got '${line.trim().slice(0, 40)}' (no password)`);
    let user: string;
    try {
      user = accountJid(m[1], domain);
    } catch (err) {
      throw new PieError(`${where}: ${(err as Error).message}`);
    }
    const before = seen.get(user);
    if (before !== undefined) throw new PieError(`${where}: ${user} again (first at line ${before})`);
    seen.set(user, i + 1);
    out.push({ record: { user, credentials: [] }, password: m[2]!, where });
  });
  if (out.length === 0) throw new PieError(`${file}: no 'USER PASSWORD' line`);
  return out;
}

/** Creates the accounts of `adduser --from`, as `importPie` does. */
export async function importUserLines(storage: Storage, accounts: PendingAccount[], opts: BulkOptions = {}): Promise<ImportSummary> {
  const started = Date.now();
  const summary = { ...newSummary(), total: accounts.length };
  const bar = new ProgressBar("adduser", summary.total, opts.out);
  const writer = new BatchWriter(storage, bar, summary, opts.batchAccounts ?? DEFAULT_BATCH, opts.batchChars ?? DEFAULT_BATCH_CHARS);
  for (const a of accounts) await writer.add(a);
  await writer.flush();
  bar.finish();
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

/**
 * Writes every account (or those of `domain`) to an XEP-0227 file. The file
 * appears whole or not at all: it is written as FILE.partial and renamed at
 * the end, so an interrupted export is simply run again.
 */
export async function exportPie(storage: Storage, file: string, opts: BulkOptions & { domain?: string } = {}): Promise<{ accounts: number; seconds: number }> {
  const started = Date.now();
  const partial = `${file}.partial`;
  const fh = await open(partial, "w");
  const bar = new ProgressBar("export", undefined, opts.out);
  let accounts = 0;
  try {
    await fh.write(PIE_HEADER);
    let host: string | undefined;
    let after: string | undefined;
    for (;;) {
      const page = await storage.exportAccounts({
        ...(after === undefined ? {} : { after }), ...(opts.domain === undefined ? {} : { domain: opts.domain }),
        limit: opts.batchAccounts ?? DEFAULT_BATCH, maxBytes: 512 * 1024,
        kvStores: EXPORTED_KV_STORES, archiveStores: EXPORTED_ARCHIVE_STORES,
      });
      let text = "";
      for (const a of page.accounts as ExportedAccount[]) {
        const domain = a.user.slice(a.user.lastIndexOf("@") + 1);
        if (domain !== host) {
          if (host !== undefined) text += HOST_END;
          text += hostStart(domain);
          host = domain;
        }
        text += userXml(a);
      }
      await fh.write(text);
      accounts += page.accounts.length;
      bar.advance(page.accounts.length);
      const last = page.accounts[page.accounts.length - 1];
      if (page.complete || last === undefined) break;
      after = last.user;
    }
    if (host !== undefined) await fh.write(HOST_END);
    await fh.write(PIE_FOOTER);
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(partial, { force: true });
    throw err;
  }
  await rename(partial, file);
  bar.finish();
  return { accounts, seconds: (Date.now() - started) / 1000 };
}

/** The lines an import ends with. */
export function importReport(what: string, s: ImportSummary): string {
  const lines = [
    `${what}: ${s.total} accounts in ${s.seconds.toFixed(1)} s: ${s.created} created, ${s.existed} already there (left as they were), ${s.skipped} skipped`,
  ];
  for (const [name, users] of s.ignored) lines.push(`  not imported: <${name}> of ${users} account${users === 1 ? "" : "s"} (nothing in the farm reads it)`);
  return lines.join("\n") + "\n";
}
