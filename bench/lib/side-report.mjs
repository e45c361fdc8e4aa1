// SIDE-BY-SIDE.md from a side-by-side result: one table per scenario
// (figures × targets), then jabberfarm ÷ peer for every figure.
import { fmt, keyFigures } from "../load/report.mjs";

const SHORT = { "jabberfarm-embedded": "jf-embedded", "jabberfarm-postgres": "jf-postgres" };
const short = (t) => SHORT[t] ?? t;

function ratio(a, b) {
  if (typeof a !== "number" || typeof b !== "number" || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "–";
  const r = a / b;
  return r >= 100 ? `${Math.round(r)}×` : r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`;
}

function sizes(c) {
  const parts = [`${c.users} accounts`];
  if (c.scenarios.includes("login")) parts.push(`login ${c.logins} × concurrency ${c.concurrency}`);
  if (c.scenarios.includes("idle")) parts.push(`idle ${c.idle} sessions held ${c.hold} s`);
  if (c.scenarios.includes("messages")) parts.push(`messages ${c.pairs} pairs × window ${c.window} × ${c.duration} s to the full JID (drain ${c.drain} s)`);
  if (c.scenarios.includes("rooms")) parts.push(`rooms ${c.rooms} × ${c.occupants} occupants × window ${c.window} × ${c.duration} s (drain ${c.drain} s)`);
  if (c.scenarios.includes("presence")) parts.push(`presence ${c.churners} churners, ${c.observers} observers, ${c.roster}-contact rosters, ${c.presenceDuration} s`);
  return parts.join("; ");
}

export function sideBySideMarkdown(r) {
  const c = r.config;
  const targets = c.targets.filter((t) => r.targets[t]);
  const farms = targets.filter((t) => t.startsWith("jabberfarm-"));
  const peers = targets.filter((t) => !t.startsWith("jabberfarm-"));
  const o = [];
  o.push("# jabberfarm side by side");
  o.push("");
  o.push(`Run ${r.started_at} → ${r.finished_at ?? "(unfinished)"} with \`node bench/side-by-side.mjs\`; raw figures in \`${r.json_file ?? "side-by-side-*.json"}\`.`);
  o.push(`Host: ${r.host.cores} cores (${r.host.cpu}), Node ${r.host.node}, Linux ${r.host.kernel}. The generator and the servers share the box, so CPU figures are % of ONE core (${r.host.cores * 100} = the whole box), and "other CPU" is what the rest of the machine used meanwhile.`);
  o.push("");
  o.push(`Sizes: ${sizes(c)}. c2s ${c.tls ? "STARTTLS (required)" : "plaintext"}, SASL ${c.mech}${c.sm > 0 ? `, XEP-0198 stream management on every client (an ack asked every ${c.sm} stanzas sent; ejabberd mod_stream_mgmt, prosody mod_smacks)` : ""}. ${archiveLine(c.archive)} ${c.peerPasswords === "scram" ? "The peers store SCRAM keys as the farm does (ejabberd auth_password_format scram, prosody internal_hashed)." : "The peers store plaintext passwords, the farm SCRAM keys (PLAIN costs the farm a PBKDF2 per login, the peers none)."} Every scenario runs on a freshly started server.`);
  if (r.error) o.push("", `**Run incomplete: ${r.error}.**`);
  o.push("");
  o.push("## Targets");
  o.push("");
  o.push("| target | version | processes measured | storage / accounts | c2s | notes |");
  o.push("|---|---|---|---|---|---|");
  for (const t of targets) {
    const x = r.targets[t];
    const notes = [x.error, x.rate_limit, x.accounts_created_s != null ? `${c.users} accounts written in ${x.accounts_created_s} s` : undefined, x.command ? `\`${x.command.replace(/\/tmp\/[^ ]+/g, "<tmp>")}\`` : undefined].filter(Boolean).join("; ");
    const storage = x.storage ?? (c.peerPasswords === "scram"
      ? { ejabberd: "Mnesia, SCRAM keys", prosody: "files (internal_hashed)", jabberd2: "SQLite, plaintext passwords" }
      : { ejabberd: "Mnesia, plaintext passwords", prosody: "files (internal_plain)", jabberd2: "SQLite, plaintext passwords" })[t] ?? "";
    o.push(`| ${t} | ${x.version ?? ""} | ${x.processes ?? "–"} | ${storage} | ${x.mode ?? "–"} | ${notes} |`);
  }
  o.push("");

  for (const sc of c.scenarios) {
    o.push(`## ${sc}`);
    o.push("");
    const cols = [];
    for (const f of farms) for (const p of peers) cols.push([f, p]);
    const figs = new Map();
    for (const t of targets) {
      const s = r.targets[t].scenarios?.[sc];
      if (!s || s.error || s.skipped) continue;
      for (const f of keyFigures(s)) if (!figs.has(f.key)) figs.set(f.key, f);
    }
    o.push(`| figure | ${targets.map(short).join(" | ")}${cols.length ? " | " + cols.map(([f, p]) => `${short(f).replace("jf-", "")}÷${p}`).join(" | ") : ""} |`);
    o.push(`|---|${targets.map(() => "---:").join("|")}${cols.length ? "|" + cols.map(() => "---:").join("|") : ""}|`);
    const value = (t, key) => {
      const s = r.targets[t].scenarios?.[sc];
      if (!s || s.error || s.skipped) return undefined;
      return keyFigures(s).find((f) => f.key === key)?.value;
    };
    const status = (t) => {
      const s = r.targets[t].scenarios?.[sc];
      if (r.targets[t].error) return "n/a";
      if (!s) return "not run";
      if (s.skipped) return "skipped";
      if (s.error) return "error";
      return undefined;
    };
    for (const [key, f] of figs) {
      const arrow = f.better === "higher" ? " ↑" : f.better === "lower" ? " ↓" : "";
      const cells = targets.map((t) => status(t) ?? fmt(value(t, key)));
      const ratios = cols.map(([fa, p]) => (f.noRatio ? "" : ratio(value(fa, key), value(p, key))));
      o.push(`| ${f.label}${arrow} | ${cells.join(" | ")}${ratios.length ? " | " + ratios.join(" | ") : ""} |`);
    }
    if (figs.size === 0) o.push(`| (no results) | ${targets.map((t) => status(t) ?? "–").join(" | ")}${cols.length ? " | " + cols.map(() => "–").join(" | ") : ""} |`);
    // CPU by process, where it matters
    const byProc = targets.map((t) => {
      const s = r.targets[t].scenarios?.[sc];
      const cpu = s?.cpu ?? s?.cpu_ramp;
      if (!cpu?.server_cpu_pct_by_process) return undefined;
      return `${short(t)}: ${Object.entries(cpu.server_cpu_pct_by_process).map(([k, v]) => `${k.replace(/:\d+$/, "")} ${v}`).join(", ")}`;
    }).filter(Boolean);
    o.push("");
    if (byProc.length) o.push(`Server CPU % by process${sc === "idle" ? " (ramp)" : ""}: ${byProc.join("; ")}.`, "");
    if (sc === "idle") {
      const mem = targets.map((t) => {
        const s = r.targets[t].scenarios?.[sc];
        if (!s?.server_rss_by_process) return undefined;
        return `${short(t)}: ${Object.entries(s.server_rss_by_process).map(([k, v]) => `${k.replace(/:\d+$/, "")} ${Math.round(v.rss_before_kb / 1024)}→${Math.round(v.rss_held_kb / 1024)} MB`).join(", ")}`;
      }).filter(Boolean);
      if (mem.length) o.push(`RSS by process (before → with the sessions): ${mem.join("; ")}.`, "");
    }
    if (sc === "presence") {
      const seeds = targets.map((t) => {
        const s = r.targets[t].scenarios?.[sc];
        if (!s || s.error || s.skipped) return undefined;
        if (s.seed?.method === "xmpp") return `${short(t)}: over XMPP (${s.seed.both_items_verified}/${s.seed.both_items_expected} "both" items verified, ${s.seed.seconds} s)`;
        return `${short(t)}: written into storage before start${s.server?.roster_items_written ? ` (${s.server.roster_items_written} items)` : ""}`;
      }).filter(Boolean);
      if (seeds.length) o.push(`Rosters: ${seeds.join("; ")}.`, "");
    }
  }

  // Problems worth knowing when reading the numbers.
  const problems = [];
  for (const t of targets) {
    const x = r.targets[t];
    if (x.error) problems.push(`- **${t}**: ${x.error}`);
    for (const [sc, s] of Object.entries(x.scenarios ?? {})) {
      const bits = [];
      if (s.error) bits.push(s.error);
      if (s.generator_error) bits.push(s.generator_error);
      if (s.generator_exit !== undefined) bits.push(`generator exit ${s.generator_exit}`);
      const errs = s.errors ?? {};
      if (Object.keys(errs).length) bits.push(`errors: ${Object.entries(errs).map(([k, v]) => `${k} ×${v}`).join("; ")}`);
      if (s.login_errors && Object.keys(s.login_errors).length) bits.push(`login errors: ${Object.entries(s.login_errors).map(([k, v]) => `${k} ×${v}`).join("; ")}`);
      if (s.dropped_reasons && Object.keys(s.dropped_reasons).length) bits.push(`dropped: ${Object.entries(s.dropped_reasons).map(([k, v]) => `${k} ×${v}`).join("; ")}`);
      if (s.server_warnings) bits.push(...s.server_warnings);
      if (s.seed && s.seed.users_incomplete) bits.push(`roster seeding incomplete for ${s.seed.users_incomplete} users`);
      if (bits.length) problems.push(`- **${t} / ${sc}**: ${bits.join(" — ").replace(/\|/g, "/")}`);
    }
  }
  o.push("## Errors and warnings");
  o.push("");
  o.push(problems.length ? problems.join("\n") : "None.");
  o.push("");
  o.push("## Reading this");
  o.push("");
  o.push("- Ratio columns are jabberfarm ÷ peer for the same figure: for ↑ figures above 1 favours jabberfarm, for ↓ figures below 1 does.");
  o.push("- jabberfarm stores SCRAM keys only (never passwords), so a SASL PLAIN login costs it a PBKDF2 derivation (4096 iterations) that the peers, configured with plaintext passwords (PEER_PASSWORDS=plain), do not pay; with PEER_PASSWORDS=scram ejabberd and prosody pay it too. With MECH=SCRAM-SHA-256 the hashing moves to the client (the generator caches the salted password, as clients may).");
  o.push("- \"server CPU ms per login\" and \"server CPU µs per message\" divide the server's CPU time by the work done: they compare efficiency even when the box, not the server, is the limit.");
  if (targets.includes("jabberfarm-postgres")) {
    o.push("- jabberfarm-postgres: the PostgreSQL server's own CPU and memory are not in the server figures (only the farm's processes are measured); its CPU shows up in \"other CPU %\".");
  }
  o.push("- A single-process peer can use at most one core (prosody), ejabberd can use both, jabberfarm runs four Node processes; the generator needs its share of the same two cores (see \"generator CPU %\").");
  o.push("- Run twice before trusting a difference under ~15 %: the shared harness saw 3–25 % run-to-run spread on this box (../shared/bench/README.md).");
  o.push("");
  return o.join("\n");
}


/** What ARCHIVE meant for the run (older result files have none: each server's default). */
function archiveLine(archive = "default") {
  if (archive === "on") return "Every server archives every one-to-one message (XEP-0313: jabberfarm's mam module, ejabberd mod_mam, prosody mod_mam; default always).";
  if (archive === "off") return "No server archives messages (jabberfarm with sm.mam.default never; the peers have no archive module).";
  return "Archives as each server comes: jabberfarm archives every one-to-one message (XEP-0313, two writes a message), the peers archive nothing.";
}
