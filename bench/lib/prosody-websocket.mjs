// Prosody with mod_websocket, for bench/websocket.mjs. The shared launcher
// (../shared/bench/servers/prosody.sh) configures no HTTP listener and has
// no hook for one, and regenerates its config at every start; so: start it
// once (config, accounts), stop it, add the WebSocket lines to the config it
// wrote, and run prosody on that config here. Plaintext only (ws://): the
// launcher's TLS mode has no certificate for an HTTPS listener.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { startPeer } from "./targets.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitPort(port, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const s = connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return true;
    await sleep(100);
  }
  return false;
}

export async function startProsodyWebSocket({ domain, users, benchWork, wsPort, log }) {
  const first = await startPeer({ name: "prosody", domain, users, tls: false, benchWork, log });
  await first.stop();
  const cfg = join(benchWork, "run/prosody/prosody.cfg.lua");
  if (!existsSync(cfg)) throw new Error(`no prosody config at ${cfg}`);
  const text = readFileSync(cfg, "utf8");
  // Global options go before the VirtualHost line; appending module lists after it would scope them to the host.
  const at = text.indexOf("VirtualHost");
  const extra = [
    "-- added by bench/lib/prosody-websocket.mjs",
    `http_ports = { ${wsPort} }`,
    'http_interfaces = { "127.0.0.1" }',
    "https_ports = { }",
    "consider_websocket_secure = true  -- like c2s here: PLAIN in the clear on loopback (benchmark only)",
    "cross_domain_websocket = true",
    "",
  ].join("\n");
  // The launcher's module list, plus HTTP and WebSocket (one modules_enabled: prosody refuses a second).
  const patched = (text.slice(0, at) + extra + text.slice(at)).replace(/modules_enabled = \{([^}]*)\}/, 'modules_enabled = {$1; "http"; "websocket" }');
  if (!patched.includes('"websocket"')) throw new Error("the launcher's prosody config has no modules_enabled line to extend");
  // Prosody reads only files named *.cfg.lua.
  const wsCfg = cfg.replace(/\.cfg\.lua$/, "-websocket.cfg.lua");
  writeFileSync(wsCfg, patched);
  const proc = spawn("prosody", ["--config", wsCfg, "-F"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (out += d));
  if (!(await waitPort(wsPort, 30_000)) || !(await waitPort(first.port, 10_000))) {
    proc.kill("SIGKILL");
    throw new Error(`prosody with mod_websocket did not open its ports: ${out.slice(-1500)}`);
  }
  log(`prosody: ws://127.0.0.1:${wsPort}/xmpp-websocket and TCP ${first.port}`);
  return {
    port: first.port, wsUrl: `ws://127.0.0.1:${wsPort}/xmpp-websocket`, pid: proc.pid,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      const end = Date.now() + 10_000;
      while (proc.exitCode === null && Date.now() < end) await sleep(100);
      if (proc.exitCode === null) proc.kill("SIGKILL");
    },
  };
}
