// Run as a child process by pglite.ts: creates (initdb) a PGlite database in
// the directory given and exits, so initdb's memory leaves with the process.
import { PGlite } from "@electric-sql/pglite";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: pglite-init DIR\n");
  process.exit(2);
}
const pg = await PGlite.create(dir);
await pg.close();
