#!/usr/bin/env node
// A jabberfarm ready for bench/load/xmppload.mjs: accounts user1..userN /
// "pw" written into fresh storage (PGlite, or a fresh PostgreSQL database
// that is dropped at the end), optionally the presence scenario's rosters,
// then `jabberfarm up` on free loopback ports. Prints the port, the PIDs to
// measure and a generator command line; stops by itself after --for seconds
// (or on Ctrl-C / SIGTERM) and removes what it made.
//
//   node bench/serve-farm.mjs --users 1000                 # embedded, plaintext c2s
//   node bench/serve-farm.mjs --postgres --tls --for 600
//   node bench/serve-farm.mjs --presence 100,20            # + rosters: 100 churners, 20 contacts each
//   node bench/serve-farm.mjs --sm 2 --c2s 3               # up --sm 2 --c2s 3: c2s on 127.0.0.1-3
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { farmSupportsPlaintext, makeJabberfarmTemplate, startJabberfarm } from "./lib/targets.mjs";

const { values } = parseArgs({
  options: {
    users: { type: "string", default: "1000" },
    domain: { type: "string", default: "bench.test" },
    postgres: { type: "boolean", default: false },
    "pg-admin-url": { type: "string", default: process.env.PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres" },
    tls: { type: "boolean", default: false },
    "rate-limit": { type: "string", default: "off" },
    presence: { type: "string", default: "" },
    observers: { type: "string", default: "0" },
    for: { type: "string", default: "1800" },
    "write-env": { type: "string", default: "" },
    routers: { type: "string", default: "1" },
    sm: { type: "string", default: "1" },
    c2s: { type: "string", default: "1" },
    muc: { type: "string", default: "1" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: node bench/serve-farm.mjs [--users N] [--domain D] [--postgres] [--tls]
       [--rate-limit off|default] [--presence CHURNERS,ROSTER [--observers M]] [--for SECONDS] [--write-env FILE]
       [--routers N] [--sm N] [--c2s N] [--muc N (group chat processes, default 1)]
--write-env writes PORT=, HOSTS=, PIDS=, DOMAIN= and TLS= lines for scripts.
--c2s N puts c2s k on 127.0.0.k (same port); give the generator --hosts.
`);
  process.exit(0);
}
const log = (m) => process.stderr.write(`[serve-farm] ${m}\n`);
const users = Number(values.users);
const life = Number(values.for);
const workDir = mkdtempSync(join(tmpdir(), "jf-serve-"));
let presence;
if (values.presence) {
  const [churners, roster] = values.presence.split(",").map(Number);
  presence = { churners, roster, observers: Number(values.observers) || churners };
}

const template = await makeJabberfarmTemplate({
  kind: values.postgres ? "postgres" : "embedded", users, domain: values.domain, workDir, pgAdminUrl: values["pg-admin-url"], log,
});
let farm;
let stopping = false;
const stop = async (code) => {
  if (stopping) return;
  stopping = true;
  log("stopping");
  await farm?.stop().catch((e) => log(e.message));
  await template.drop().catch((e) => log(e.message));
  rmSync(workDir, { recursive: true, force: true });
  log("stopped; storage removed");
  process.exit(code);
};
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
try {
  farm = await startJabberfarm({
    template, scenario: "serve", domain: values.domain, tls: values.tls, plaintextSupported: farmSupportsPlaintext(),
    presence, workDir, log, rateLimit: values["rate-limit"],
    topology: { routers: Number(values.routers), sm: Number(values.sm), c2s: Number(values.c2s), muc: Number(values.muc) },
  });
} catch (err) {
  log(err.message);
  await stop(1);
}
const pids = farm.procs.map((p) => `${p.name}:${p.pid}`).join(",");
if (values["write-env"]) {
  writeFileSync(values["write-env"], `PORT=${farm.port}\nHOSTS=${farm.hosts.join(",")}\nPIDS=${pids}\nDOMAIN=${values.domain}\nTLS=${farm.tls ? 1 : 0}\n`);
}
process.stdout.write(`jabberfarm (${farm.database}) up on ${farm.hosts.join(", ")} port ${farm.port}, ${farm.mode}; ${users} accounts user1..user${users} / pw` +
  `${presence ? `; rosters for ${presence.churners} churners × ${presence.roster} contacts` : ""}\n` +
  `command: ${farm.command}\n` +
  `measure: --pids ${pids}\n` +
  `try:     node bench/load/xmppload.mjs${farm.hosts.length > 1 ? ` --hosts ${farm.hosts.join(",")}` : ""} --port ${farm.port} --domain ${values.domain}${farm.tls ? " --tls" : ""} --users ${users} --pids ${pids} --scenario login\n` +
  `stops by itself in ${life} s (or Ctrl-C)\n`);
setTimeout(() => void stop(0), life * 1000);
