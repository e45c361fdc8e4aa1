// Whole accounts in bulk (docs/storage.md, "Accounts in bulk"): one
// transaction per request, each table written by one statement over arrays
// (unnest), so a batch of a thousand accounts costs a handful of statements.
//
// An account that exists already is left exactly as it was, data and all:
// what makes an interrupted import safe to run again (every created account
// came with all its data, in the same transaction).
import { randomUUID } from "node:crypto";
import { accountsExportSchema, accountsImportSchema } from "@jabberfarm/envelope";
import type { Db } from "./db.js";
import { parsed } from "./store-sql.js";
import { CREDENTIALS_SELECT, credentialFromRow, type CredentialRow } from "./sql-storage.js";
import type { RosterItem, Subscription } from "./storage.js";

type ImportParams = ReturnType<typeof accountsImportSchema.parse>;
type ExportParams = ReturnType<typeof accountsExportSchema.parse>;
export type ImportedAccount = ImportParams["accounts"][number];
type ExportedAccount = Omit<ImportedAccount, "credentials"> & { credentials: ImportedAccount["credentials"] };

/** Validates an import (InvalidArgumentError naming the field) before anything is written. */
export function checkedImport(accounts: unknown): ImportParams["accounts"] {
  return parsed<ImportParams>(accountsImportSchema, { accounts }).accounts;
}

export async function importAccounts(db: Db, accounts: ImportParams["accounts"]): Promise<Array<"created" | "exists">> {
  // A name twice in one batch: the first one counts, the others "exist" by then.
  const first = new Map<string, ImportedAccount>();
  for (const a of accounts) if (!first.has(a.user)) first.set(a.user, a);
  const created = await db.transaction(async (tx) => {
    const rows = await tx.query<{ username: string }>(
      "INSERT INTO accounts (username) SELECT u FROM unnest($1::text[]) AS t(u) ON CONFLICT (username) DO NOTHING RETURNING username",
      [[...first.keys()]],
    );
    const fresh = rows.map((r) => first.get(r.username)!);
    if (fresh.length > 0) await writeData(tx, fresh);
    return new Set(rows.map((r) => r.username));
  });
  return accounts.map((a) => (created.has(a.user) && first.get(a.user) === a ? "created" : "exists"));
}

async function writeData(tx: Db, fresh: ImportedAccount[]): Promise<void> {
  const creds = fresh.flatMap((a) => {
    // One credential per mechanism (the primary key): the last one given wins.
    const byMechanism = new Map(a.credentials.map((c) => [c.mechanism, c] as const));
    return [...byMechanism.values()].map((c) => ({ user: a.user, ...c }));
  });
  await tx.query(
    `INSERT INTO credentials (username, mechanism, salt, iterations, stored_key, server_key)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[])`,
    [creds.map((c) => c.user), creds.map((c) => c.mechanism), creds.map((c) => c.salt), creds.map((c) => c.iterations),
      creds.map((c) => c.storedKey), creds.map((c) => c.serverKey)],
  );
  const roster = fresh.flatMap((a) => [...new Map(a.roster.map((i) => [i.jid, i] as const)).values()].map((i) => ({ user: a.user, ...i })));
  if (roster.length > 0) {
    // Groups travel as JSON text: unnest cannot take an array of arrays of different lengths.
    await tx.query(
      `INSERT INTO roster_items (username, jid, name, subscription, ask, approved, groups)
       SELECT u, j, n, s, a, ap, ARRAY(SELECT jsonb_array_elements_text(g::jsonb))
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[]) AS r(u, j, n, s, a, ap, g)`,
      [roster.map((i) => i.user), roster.map((i) => i.jid), roster.map((i) => i.name ?? null), roster.map((i) => i.subscription),
        roster.map((i) => i.ask ?? null), roster.map((i) => i.approved === true), roster.map((i) => JSON.stringify(i.groups))],
    );
    // Ver 0 means "empty roster"; an imported roster starts at 1.
    await tx.query("UPDATE accounts SET roster_ver = 1 WHERE username = ANY($1::text[])", [[...new Set(roster.map((i) => i.user))]]);
  }
  const kv = [...new Map(fresh.flatMap((a) => a.kv.map((e) => [`${a.user}\u0000${e.store}\u0000${e.key}`, { user: a.user, ...e }] as const))).values()];
  if (kv.length > 0) {
    await tx.query(
      "INSERT INTO kv_store (username, store, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
      [kv.map((e) => e.user), kv.map((e) => e.store), kv.map((e) => e.key), kv.map((e) => e.value)],
    );
  }
  const seen = new Set<string>();
  const items = fresh.flatMap((a) => a.archive.map((i) => ({ user: a.user, ...i, id: i.id ?? randomUUID() })))
    .filter((i) => {
      // An id once per (user, store), as appends are idempotent by id: the first one stays.
      const k = `${i.user}\u0000${i.store}\u0000${i.id}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  if (items.length > 0) {
    // In the given order, so each user's items keep it in `seq`.
    await tx.query(
      `INSERT INTO archive_store (username, store, id, at, with_jid, value)
       SELECT u, s, i, coalesce(w::timestamptz, now()), j, v
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS t(u, s, i, w, j, v, n)
       ORDER BY n`,
      [items.map((i) => i.user), items.map((i) => i.store), items.map((i) => i.id), items.map((i) => i.when ?? null),
        items.map((i) => i.with ?? null), items.map((i) => i.value)],
    );
  }
}

export function checkedExport(params: unknown): ExportParams {
  return parsed<ExportParams>(accountsExportSchema, params);
}

/** One page of whole accounts, by domain and then name (code point order); `after` is the last name of the previous page. */
export async function exportAccounts(db: Db, p: ExportParams): Promise<{ accounts: ExportedAccount[]; complete: boolean }> {
  // One snapshot for the page, so an account is never half of one moment and half of another.
  return db.transaction(async (tx) => {
    await tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    const where: string[] = [];
    const args: unknown[] = [p.limit];
    if (p.after !== undefined) {
      const after = `$${args.push(p.after)}`;
      where.push(`(domain COLLATE "C" > split_part(${after}, '@', 2) OR (domain = split_part(${after}, '@', 2) AND username COLLATE "C" > ${after}))`);
    }
    if (p.domain !== undefined) where.push(`domain = $${args.push(p.domain)}`);
    // By domain first, so that a file writes each domain's accounts together (one <host> each).
    const names = (await tx.query<{ username: string }>(
      `SELECT username FROM accounts ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY domain COLLATE "C", username COLLATE "C" LIMIT $1::int + 1`, args,
    )).map((r) => r.username);
    const more = names.length > p.limit;
    const users = names.slice(0, p.limit);
    if (users.length === 0) return { accounts: [], complete: true };
    const byUser = new Map<string, ExportedAccount>(users.map((u) => [u, { user: u, credentials: [], roster: [], kv: [], archive: [] }]));
    const creds = await tx.query<CredentialRow>(`${CREDENTIALS_SELECT} WHERE a.username = ANY($1::text[]) ORDER BY a.username, c.mechanism`, [users]);
    for (const r of creds) if (r.mechanism !== null) byUser.get(r.username)?.credentials.push(credentialFromRow(r));
    const roster = await tx.query<{ username: string; jid: string; name: string | null; subscription: string; ask: string | null; approved: boolean; groups: string[] }>(
      "SELECT username, jid, name, subscription, ask, approved, groups FROM roster_items WHERE username = ANY($1::text[]) ORDER BY username, jid COLLATE \"C\"", [users],
    );
    for (const r of roster) {
      const item: RosterItem = { jid: r.jid, subscription: r.subscription as Subscription, groups: r.groups };
      if (r.name !== null) item.name = r.name;
      if (r.ask === "subscribe") item.ask = "subscribe";
      if (r.approved) item.approved = true;
      byUser.get(r.username)?.roster.push(item);
    }
    if (p.kvStores.length > 0) {
      const kv = await tx.query<{ username: string; store: string; key: string; value: string }>(
        "SELECT username, store, key, value FROM kv_store WHERE username = ANY($1::text[]) AND store = ANY($2::text[]) ORDER BY username, store, key",
        [users, p.kvStores],
      );
      for (const r of kv) byUser.get(r.username)?.kv.push({ store: r.store, key: r.key, value: r.value });
    }
    if (p.archiveStores.length > 0) {
      const items = await tx.query<{ username: string; store: string; id: string; at: Date; with_jid: string | null; value: string }>(
        "SELECT username, store, id, at, with_jid, value FROM archive_store WHERE username = ANY($1::text[]) AND store = ANY($2::text[]) ORDER BY seq",
        [users, p.archiveStores],
      );
      for (const r of items) {
        byUser.get(r.username)?.archive.push({ store: r.store, id: r.id, when: new Date(r.at).toISOString(), ...(r.with_jid === null ? {} : { with: r.with_jid }), value: r.value });
      }
    }
    // Cut by bytes: always one account, then as many as stay within the budget.
    const accounts: ExportedAccount[] = [];
    let bytes = 0;
    for (const u of users) {
      const a = byUser.get(u)!;
      const size = Buffer.byteLength(JSON.stringify(a));
      if (accounts.length > 0 && bytes + size > p.maxBytes) return { accounts, complete: false };
      accounts.push(a);
      bytes += size;
    }
    return { accounts, complete: !more };
  });
}
