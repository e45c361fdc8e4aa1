/**
 * A post-mortem of a fault test (JF_FAULTS_DUMP=FILE): the farm's log lines
 * and the ledger's messages as JSON lines, to find where a lost message went.
 */
import { writeFileSync } from "node:fs";
import type { Farm } from "./farm.js";
import type { Ledger } from "./ledger.js";

export function dump(file: string, farm: Farm, ledger: Ledger): void {
  const lines: string[] = [];
  for (const l of farm.logs) lines.push(JSON.stringify(l));
  for (const s of ledger.sent.values()) {
    lines.push(JSON.stringify({ ledger: true, ...s, received: ledger.received.get(s.id), bounced: ledger.bounced.get(s.id), accepted: ledger.accepted(s) }));
  }
  writeFileSync(file, lines.join("\n") + "\n");
}
