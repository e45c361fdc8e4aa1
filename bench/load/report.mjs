// The figures that matter for each scenario, in a fixed order, with the
// direction that is better; used for the generator's Markdown and for the
// side-by-side comparison.

const mb = (kb) => (kb == null ? null : Math.round((kb / 1024) * 10) / 10);
const per = (cpuPct, wall, n, scale) => (cpuPct == null || !wall || !n ? null : Math.round(((cpuPct / 100) * wall * scale) / n * 100) / 100);

/**
 * @returns {{key: string, label: string, value: number|string|null, better?: "higher"|"lower"}[]}
 */
export function keyFigures(s) {
  if (!s || s.error) return [{ key: "error", label: "error", value: s?.error ?? "no result" }];
  switch (s.scenario) {
    case "login":
      return [
        { key: "logins_per_s", label: "logins/s", value: s.logins_per_s, better: "higher" },
        { key: "p50", label: "login p50 ms", value: s.latency.p50_ms, better: "lower" },
        { key: "p90", label: "login p90 ms", value: s.latency.p90_ms, better: "lower" },
        { key: "p99", label: "login p99 ms", value: s.latency.p99_ms, better: "lower" },
        { key: "max", label: "login max ms", value: s.latency.max_ms, better: "lower" },
        { key: "failed", label: "failed logins", value: s.logins_failed, better: "lower" },
        { key: "server_cpu", label: "server CPU % (1 core = 100)", value: s.cpu.server_cpu_pct },
        { key: "server_cpu_ms_per_login", label: "server CPU ms per login", value: per(s.cpu.server_cpu_pct, s.cpu.wall_s, s.logins_ok, 1000), better: "lower" },
        { key: "generator_cpu", label: "generator CPU %", value: s.cpu.generator_cpu_pct, noRatio: true },
        { key: "other_cpu", label: "other CPU % on the box", value: s.cpu.other_cpu_pct, noRatio: true },
      ];
    case "idle":
      return [
        { key: "sessions", label: "sessions held", value: s.connected_at_end_of_hold, better: "higher" },
        { key: "failed", label: "failed logins", value: s.sessions_failed, better: "lower" },
        { key: "rss_before_mb", label: "server RSS before (MB)", value: mb(s.server_rss_before_kb), better: "lower" },
        { key: "rss_held_mb", label: "server RSS with sessions (MB)", value: mb(s.server_rss_held_kb), better: "lower" },
        { key: "bytes_per_session", label: "server bytes per idle session", value: s.server_bytes_per_session, better: "lower" },
        { key: "rss_after_close_mb", label: "server RSS 1 s after closing (MB)", value: mb(s.server_rss_after_close_kb), better: "lower" },
        { key: "ramp_per_s", label: "ramp logins/s", value: s.ramp_logins_per_s, better: "higher" },
        { key: "dropped", label: "dropped during hold", value: s.dropped_during_hold, better: "lower" },
        { key: "server_cpu_ramp", label: "server CPU % (ramp)", value: s.cpu_ramp.server_cpu_pct },
        { key: "server_cpu_hold", label: "server CPU % (hold)", value: s.cpu_hold.server_cpu_pct, better: "lower" },
      ];
    case "messages":
      return [
        { key: "msgs_per_s", label: "msgs/s delivered", value: s.msgs_per_s, better: "higher" },
        { key: "p50", label: "latency p50 ms", value: s.latency.p50_ms, better: "lower" },
        { key: "p90", label: "latency p90 ms", value: s.latency.p90_ms, better: "lower" },
        { key: "p99", label: "latency p99 ms", value: s.latency.p99_ms, better: "lower" },
        { key: "sent", label: "sent", value: s.sent, noRatio: true },
        { key: "received", label: "received", value: s.received, noRatio: true },
        { key: "lost", label: "lost (sent - received)", value: s.lost, better: "lower" },
        { key: "error_replies", label: "error replies", value: s.error_replies, better: "lower" },
        { key: "dropped", label: "dropped connections", value: s.dropped_connections, better: "lower" },
        { key: "server_cpu", label: "server CPU % (1 core = 100)", value: s.cpu.server_cpu_pct },
        { key: "server_cpu_us_per_msg", label: "server CPU µs per message", value: per(s.cpu.server_cpu_pct, s.cpu.wall_s, s.received_in_window, 1e6), better: "lower" },
        { key: "generator_cpu", label: "generator CPU %", value: s.cpu.generator_cpu_pct, noRatio: true },
        { key: "other_cpu", label: "other CPU % on the box", value: s.cpu.other_cpu_pct, noRatio: true },
      ];
    case "presence":
      return [
        { key: "cycles_per_s", label: "logins with fan-out /s", value: s.cycles_per_s, better: "higher" },
        { key: "presence_per_s", label: "presence delivered /s", value: s.presence_delivered_per_s, better: "higher" },
        { key: "avail_p50", label: "presence→contact p50 ms", value: s.latency_available_to_contact.p50_ms, better: "lower" },
        { key: "avail_p99", label: "presence→contact p99 ms", value: s.latency_available_to_contact.p99_ms, better: "lower" },
        { key: "unavail_p50", label: "unavailable→contact p50 ms", value: s.latency_unavailable_to_contact.p50_ms, better: "lower" },
        { key: "cycle_p50", label: "login→all contacts' presence p50 ms", value: s.latency_cycle_login_to_contacts_presence.p50_ms, better: "lower" },
        { key: "cycle_p99", label: "login→all contacts' presence p99 ms", value: s.latency_cycle_login_to_contacts_presence.p99_ms, better: "lower" },
        { key: "missing", label: "presence deliveries missing", value: s.presence_to_contacts.missing, better: "lower" },
        { key: "incomplete", label: "cycles without all probe answers", value: s.cycles_incomplete, better: "lower" },
        { key: "login_failures", label: "failed logins", value: s.login_failures, better: "lower" },
        { key: "server_cpu", label: "server CPU % (1 core = 100)", value: s.cpu.server_cpu_pct },
        { key: "generator_cpu", label: "generator CPU %", value: s.cpu.generator_cpu_pct, noRatio: true },
      ];
    case "rooms":
      return [
        { key: "room_msgs_per_s", label: "room messages/s (reflected)", value: s.room_msgs_per_s, better: "higher" },
        { key: "deliveries_per_s", label: "deliveries/s (fan-out)", value: s.deliveries_per_s, better: "higher" },
        { key: "p50", label: "latency p50 ms", value: s.latency.p50_ms, better: "lower" },
        { key: "p99", label: "latency p99 ms", value: s.latency.p99_ms, better: "lower" },
        { key: "missing", label: "deliveries missing", value: s.missing_deliveries, better: "lower" },
        { key: "join_s", label: "all rooms joined in s", value: s.join_s, better: "lower" },
        { key: "server_cpu", label: "server CPU % (1 core = 100)", value: s.cpu.server_cpu_pct },
        { key: "server_cpu_us_per_delivery", label: "server CPU µs per delivery", value: per(s.cpu.server_cpu_pct, s.cpu.wall_s, s.deliveries_per_s * s.sending_window_s, 1e6), better: "lower" },
        { key: "generator_cpu", label: "generator CPU %", value: s.cpu.generator_cpu_pct, noRatio: true },
        { key: "other_cpu", label: "other CPU % on the box", value: s.cpu.other_cpu_pct, noRatio: true },
      ];
    default:
      return [];
  }
}

export const fmt = (v) => (v == null ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100)) : String(v));

/** Markdown for one generator run: a table per scenario, then CPU by process. */
export function runMarkdown(run) {
  const out = [];
  const where = `${(run.target.hosts ?? [run.target.host]).join(", ")}:${run.target.port}`;
  out.push(`## ${run.label && run.label !== where ? `${run.label}: ` : ""}${where} ${run.target.domain}, ${run.target.tls ? "STARTTLS" : "plaintext"}, SASL ${run.target.mech}`);
  out.push("");
  for (const s of Object.values(run.scenarios)) {
    if (s.error) {
      out.push(`### ${s.scenario}`, "", `error: ${s.error}`, "");
      continue;
    }
    out.push(`### ${s.scenario}${s.params ? ` (${Object.entries(s.params).map(([k, v]) => `${k}=${v}`).join(", ")})` : ""}`);
    out.push("");
    out.push("| figure | value |");
    out.push("|---|---:|");
    for (const f of keyFigures(s)) out.push(`| ${f.label} | ${fmt(f.value)} |`);
    const cpu = s.cpu ?? s.cpu_ramp;
    if (cpu?.server_cpu_pct_by_process && Object.keys(cpu.server_cpu_pct_by_process).length) {
      out.push(`| server CPU % by process | ${Object.entries(cpu.server_cpu_pct_by_process).map(([k, v]) => `${k} ${v}`).join(", ")} |`);
    }
    const errs = s.errors ?? s.login_errors;
    if (errs && Object.keys(errs).length) out.push(`| errors | ${Object.entries(errs).map(([k, v]) => `${k.replace(/\|/g, "/")}: ${v}`).join("; ")} |`);
    out.push("");
  }
  return out.join("\n");
}
