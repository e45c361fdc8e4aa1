// SCALE-<date>.md from a bench/scale.mjs result: one row per farm shape
// (routers × sm × c2s): throughput, where the CPU went by process kind,
// CPU per message and per login, and memory by process kind.

export const topologyName = (t) => `${t.routers}x${t.sm}x${t.c2s}`;
const KINDS = ["router", "xdb", "sm", "c2s"];

/** "sm-2:1234" → "sm"; "router:99" → "router". */
const kindOf = (key) => key.slice(0, key.lastIndexOf(":")).replace(/-\d+$/, "");
const nameOf = (key) => key.slice(0, key.lastIndexOf(":"));

const f0 = (x) => (x == null || !Number.isFinite(x) ? "–" : Math.round(x).toLocaleString("en-US"));
const f1 = (x) => (x == null || !Number.isFinite(x) ? "–" : (Math.round(x * 10) / 10).toLocaleString("en-US"));
const f2 = (x) => (x == null || !Number.isFinite(x) ? "–" : (Math.round(x * 100) / 100).toString());
const mb = (kb) => (kb == null ? null : kb / 1024);

/** Sums an object keyed "name:pid" by process kind. */
function byKind(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj ?? {})) if (typeof v === "number") out[kindOf(k)] = (out[kindOf(k)] ?? 0) + v;
  return out;
}
const total = (o) => Object.values(o).reduce((a, b) => a + b, 0);

function shape(t) {
  return `${t.routers} router${t.routers > 1 ? "s" : ""}, ${t.sm} sm, ${t.c2s} c2s`;
}

function rowLabel(r, repeat) {
  return `${shape(r.topology)}${repeat > 1 ? ` (round ${r.round})` : ""}`;
}

/** CPU per unit of work, by kind: (% of a core / 100) × seconds / units × scale. */
function perUnit(cpu, units, scale) {
  if (!cpu || !units) return {};
  const k = byKind(cpu.server_cpu_pct_by_process);
  return Object.fromEntries(Object.entries(k).map(([kind, pct]) => [kind, ((pct / 100) * cpu.wall_s * scale) / units]));
}

function sizes(c) {
  const p = [`${c.users} accounts`];
  if (c.scenarios.includes("login")) p.push(`login ${c.logins} × concurrency ${c.concurrency}`);
  if (c.scenarios.includes("messages")) p.push(`messages ${c.pairs} pairs × window ${c.window} × ${c.duration} s to the full JID (drain ${c.drain} s)`);
  if (c.scenarios.includes("idle")) p.push(`idle ${c.idle} sessions with presence held ${c.hold} s`);
  return p.join("; ");
}

export function scaleMarkdown(r) {
  const c = r.config;
  const runs = r.runs ?? [];
  const ok = runs.filter((x) => !x.error);
  const o = [];
  o.push("# jabberfarm at several shapes on one machine");
  o.push("");
  o.push(`Run ${r.started_at} → ${r.finished_at ?? "(unfinished)"} with \`${r.command ?? "node bench/scale.mjs"}\`; raw figures in \`${r.json_file ?? "scale-*.json"}\`; jabberfarm ${r.jabberfarm ?? "?"}.`);
  o.push(`Host: ${r.host.cores} cores (${r.host.cpu}), Node ${r.host.node}, Linux ${r.host.kernel}; load average at start ${r.host.loadavg_at_start?.join(", ") ?? "?"}.`);
  o.push("");
  o.push(`**${r.host.cores} cores for everything.** The generator, every farm process and whatever else runs on the box share them, so CPU figures are % of ONE core (${r.host.cores * 100} = the whole box) and "other" is what the rest of the machine used meanwhile. More processes than cores cannot add throughput here; these rows show what each extra process costs and where the CPU goes.`);
  o.push("");
  if (r.pbkdf2_cpu_ms_at_start != null) {
    o.push(`Core speed probe: one PBKDF2-SHA-256 of 4096 iterations (what a SASL PLAIN login costs c2s) took ${r.pbkdf2_cpu_ms_at_start} ms of CPU in the script at the start and ${r.pbkdf2_cpu_ms_at_end ?? "?"} ms at the end (column "PBKDF2 ms" for each row). The same code on the same box costs more CPU time while the neighbours are busy; compare CPU per message between rows with that in mind.`);
    o.push("");
  }
  o.push(`Sizes, the same for every row: ${sizes(c)}. Plaintext c2s (\`up --plaintext\`), SASL PLAIN, PGlite, c2s byte rate lifted. Each row is a fresh \`jabberfarm up --routers R --sm S --c2s C\` on a copy of the same accounts; c2s k listens on 127.0.0.k and the generator spreads its clients round-robin over them (\`--hosts\`), so with several c2s a sender and its receiver are on different c2s. With several sm, users are shared between them by rendezvous hash of the bare JID.`);
  if (r.error) o.push("", `**Run incomplete: ${r.error}.**`);
  if (r.note) o.push("", `Note: ${r.note}`);
  o.push("");

  const msgs = (x) => x.scenarios?.messages;
  const login = (x) => x.scenarios?.login;
  const idle = (x) => x.scenarios?.idle;
  const good = (s) => s && !s.error;

  o.push("## Throughput");
  o.push("");
  o.push("| farm | processes | msgs/s | msg p50 / p99 ms | lost | logins/s | login p50 ms | farm CPU % (msgs) | generator % | other % | load avg before | PBKDF2 ms before / in msgs | start s |");
  o.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const x of runs) {
    if (x.error) {
      o.push(`| ${rowLabel(x, c.repeat)} | ${x.topology.routers + 1 + x.topology.sm + x.topology.c2s} | ${x.error} |  |  |  |  |  |  |  |  |  |  |`);
      continue;
    }
    const m = msgs(x);
    const l = login(x);
    o.push(`| ${rowLabel(x, c.repeat)} | ${x.processes.length} | ${good(m) ? f0(m.msgs_per_s) : "–"} | ${good(m) ? `${f1(m.latency.p50_ms)} / ${f1(m.latency.p99_ms)}` : "–"} | ${good(m) ? f0(m.lost) : "–"} | ${good(l) ? f0(l.logins_per_s) : "–"} | ${good(l) ? f1(l.latency.p50_ms) : "–"} | ${good(m) ? f0(m.cpu.server_cpu_pct) : "–"} | ${good(m) ? f0(m.cpu.generator_cpu_pct) : "–"} | ${good(m) ? f0(m.cpu.other_cpu_pct) : "–"} | ${x.loadavg_before?.[0] ?? "–"} | ${x.pbkdf2_cpu_ms_before ?? "–"} / ${x.pbkdf2_cpu_ms_during?.messages ?? "–"} | ${f1(x.start_s)} |`);
  }
  o.push("");
  o.push(`"farm CPU", "generator" and "other" are for the message run's ${c.duration} s window; "load avg before" is the 1-minute load average when the row started; "PBKDF2 ms" the core speed probe just before the row and the median of its samples during the message run (lower is a faster core); "start s" from \`up\` to its "jabberfarm is up".`);
  o.push("");

  if (ok.some((x) => good(msgs(x)))) {
    o.push("## Where the CPU goes in the message run (% of one core, summed over the processes of a kind)");
    o.push("");
    o.push(`| farm | ${KINDS.join(" | ")} | farm | generator | other | box busy (% of ${r.host.cores * 100}) |`);
    o.push(`|---|${KINDS.map(() => "---:").join("|")}|---:|---:|---:|---:|`);
    for (const x of ok) {
      const m = msgs(x);
      if (!good(m)) continue;
      const k = byKind(m.cpu.server_cpu_pct_by_process);
      o.push(`| ${rowLabel(x, c.repeat)} | ${KINDS.map((kind) => f0(k[kind])).join(" | ")} | ${f0(m.cpu.server_cpu_pct)} | ${f0(m.cpu.generator_cpu_pct)} | ${f0(m.cpu.other_cpu_pct)} | ${f0(m.cpu.box_busy_pct_all_cores * r.host.cores)} |`);
    }
    o.push("");
  }

  o.push("## CPU per unit of work, by process kind");
  o.push("");
  o.push("CPU time of the processes of a kind during the run ÷ messages delivered in the window (µs), or ÷ logins completed (ms). A message crosses c2s → router → sm → router → c2s (the sm handles sender and recipient in one pass when it owns both, else it goes sm → router → sm in between).");
  o.push("");
  o.push(`| farm | µs/msg ${KINDS.join(" | µs/msg ")} | µs/msg all | ms/login ${KINDS.join(" | ms/login ")} | ms/login all |`);
  o.push(`|---|${[...KINDS, "", ...KINDS, ""].map(() => "---:").join("|")}|`);
  for (const x of ok) {
    const m = msgs(x);
    const l = login(x);
    const pm = good(m) ? perUnit(m.cpu, m.received_in_window, 1e6) : {};
    const pl = good(l) ? perUnit(l.cpu, l.logins_ok, 1e3) : {};
    o.push(`| ${rowLabel(x, c.repeat)} | ${KINDS.map((k) => f1(pm[k])).join(" | ")} | ${good(m) ? f1(total(pm)) : "–"} | ${KINDS.map((k) => f2(pl[k])).join(" | ")} | ${good(l) ? f2(total(pl)) : "–"} |`);
  }
  o.push("");

  o.push("## Memory (RSS from /proc/PID/status, summed over the processes of a kind)");
  o.push("");
  o.push(`| farm | MB after start: ${KINDS.join(" / ")} | MB after start, all | MB peak in the message run, all | bytes per idle session: ${KINDS.join(" / ")} | bytes per idle session, all | idle sessions held |`);
  o.push("|---|---|---:|---:|---|---:|---:|");
  for (const x of ok) {
    const start = byKind(x.rss_after_start_kb);
    const peak = x.rss_peak_kb?.messages ? total(x.rss_peak_kb.messages) : null;
    const i = idle(x);
    let per = {};
    if (good(i)) for (const [k, v] of Object.entries(i.server_rss_by_process ?? {})) per[kindOf(k)] = (per[kindOf(k)] ?? 0) + (v.bytes_per_session ?? 0);
    if (!good(i)) per = {};
    o.push(`| ${rowLabel(x, c.repeat)} | ${KINDS.map((k) => f0(mb(start[k]))).join(" / ")} | ${f0(mb(total(start)))} | ${f0(mb(peak))} | ${good(i) ? KINDS.map((k) => f0(per[k])).join(" / ") : "–"} | ${good(i) ? f0(i.server_bytes_per_session) : "–"} | ${good(i) ? f0(i.connected_at_end_of_hold) : "–"} |`);
  }
  o.push("");
  o.push("Bytes per idle session = (RSS at the end of the hold − RSS before the ramp) ÷ sessions held; a few thousand sessions give noisy per-process figures (a GC can make one negative), the total is steadier.");
  o.push("");

  o.push("## Every process");
  o.push("");
  o.push("CPU % of one core in the login and message runs; RSS in MB after start → peak in the message run → with the idle sessions held.");
  o.push("");
  for (const x of ok) {
    const m = msgs(x);
    const l = login(x);
    const i = idle(x);
    const parts = x.processes.map((key) => {
      const cm = good(m) ? m.cpu.server_cpu_pct_by_process[key] : undefined;
      const cl = good(l) ? l.cpu.server_cpu_pct_by_process[key] : undefined;
      const held = good(i) ? i.server_rss_by_process?.[key]?.rss_held_kb : undefined;
      return `${nameOf(key)} CPU ${f0(cl)} / ${f0(cm)} %, RSS ${f0(mb(x.rss_after_start_kb?.[key]))} → ${f0(mb(x.rss_peak_kb?.messages?.[key]))} → ${f0(mb(held))}`;
    });
    o.push(`- **${rowLabel(x, c.repeat)}**: ${parts.join("; ")}`);
  }
  o.push("");

  const problems = [];
  for (const x of runs) {
    if (x.error) problems.push(`${rowLabel(x, c.repeat)}: ${x.error}`);
    for (const w of x.server_warnings ?? []) problems.push(`${rowLabel(x, c.repeat)}: ${w}`);
    for (const [sc, s] of Object.entries(x.scenarios ?? {})) {
      if (s.error) problems.push(`${rowLabel(x, c.repeat)} / ${sc}: ${s.error}`);
      if (s.generator_error) problems.push(`${rowLabel(x, c.repeat)} / ${sc}: ${s.generator_error}`);
      const errs = { ...(s.errors ?? {}), ...(s.setup_errors ?? {}) };
      if (Object.keys(errs).length) problems.push(`${rowLabel(x, c.repeat)} / ${sc}: ${Object.entries(errs).map(([k, v]) => `${k} ×${v}`).join(", ")}`);
      if (s.dropped_connections || s.dropped_during_hold) problems.push(`${rowLabel(x, c.repeat)} / ${sc}: dropped connections ${JSON.stringify(s.dropped_reasons ?? {})}`);
    }
  }
  o.push("## Errors and warnings");
  o.push("");
  o.push(problems.length ? problems.map((p) => `- ${p}`).join("\n") : "None: no failed login, no lost message, no dropped connection, no process restarted.");
  o.push("");
  const cmd = ok[0]?.command;
  if (cmd) {
    o.push("## How each farm was started");
    o.push("");
    o.push("```");
    o.push(cmd.replace(/\/tmp\/[^ ]+/g, "<tmp>").replace(/--port \d+ --tls-port \d+ --router-port \d+/, "--port P --tls-port T --router-port R"));
    o.push("```");
    o.push("");
    o.push("with `--routers R --sm S --c2s C` added when above 1.");
    o.push("");
  }
  return o.join("\n");
}
