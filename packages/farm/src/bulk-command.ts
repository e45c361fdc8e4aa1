/**
 * The command lines of the bulk account commands (bulk-accounts.ts): which
 * storage they work on (through the running farm's routers to xdb, else
 * directly on its storage, as `adduser`), and what they print.
 */
import { sectionFor } from "./farm-config.js";
import { routersKnown } from "./farm-wait.js";
import { createLogger } from "./logger.js";
import { UsageError, adminDocument, type Options } from "./options.js";

/** Runs `import FILE`, `export FILE` or `adduser --from FILE`; the exit code. */
export async function runBulk(command: "import" | "export" | "adduser", o: Options): Promise<number> {
  const file = command === "adduser" ? o.from : o.positionals[0];
  if (!file) throw new UsageError(`usage: jabberfarm ${command === "adduser" ? "adduser --from FILE" : `${command} FILE`}`);
  if (command === "adduser" && o.positionals.length > 0) throw new UsageError("adduser --from FILE takes no USER: the file names them");
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const cli = await routersKnown(() => sectionFor(adminDocument(o), "cli"), o.waitMs, say);
  const log = createLogger("cli", o.level === "info" ? "warn" : o.level);
  const { exportPie, importPie, importReport, importUserLines, readUserLines } = await import("./bulk-accounts.js");
  const { openAdminStorage } = await import("./admin.js");
  // Checked before the storage is opened: a bad file costs nothing and touches nothing.
  const lines = command === "adduser" ? readUserLines(file, String(cli.domain)) : undefined;
  const admin = await openAdminStorage(cli, log, o.waitMs, say);
  try {
    if (command === "export") {
      const r = await exportPie(admin.storage, file, { batchAccounts: o.batch });
      process.stderr.write(`export: ${r.accounts} accounts to ${file} in ${r.seconds.toFixed(1)} s (${admin.via === "router" ? "through the running farm" : "from the storage"})\n`);
      return 0;
    }
    const summary = lines ? await importUserLines(admin.storage, lines, { batchAccounts: o.batch }) : await importPie(admin.storage, file, { batchAccounts: o.batch });
    process.stderr.write(importReport(command, summary));
    // Accounts left out are worth a non-zero exit: a script should not take the job as done.
    return summary.skipped > 0 ? 1 : 0;
  } finally {
    await admin.close();
  }
}
