/**
 * The certificate c2s presents: the configured PEM files, or a self-signed
 * one for the domain, made on the first start and reused afterwards so that
 * clients which pinned it keep working.
 */
import { execFile } from "node:child_process";
import { X509Certificate, createPrivateKey, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";

export interface TlsMaterial {
  cert: string;
  key: string;
  /** Where the certificate came from, for the start-up log. */
  source: "configured" | "generated" | "reused";
  certPath: string;
  keyPath: string;
  fingerprint256: string;
}

export interface TlsSettings {
  cert?: string | undefined;
  key?: string | undefined;
  dataDir: string;
}

// Regenerate a kept certificate that expires sooner than this, rather than
// start a server that stops working next week.
const RENEW_BEFORE_MS = 7 * 24 * 3600_000;
const VALIDITY_YEARS = 5;

function fileStem(domain: string): string {
  return domain.toLowerCase().replace(/[^a-z0-9.-]/g, "_");
}

/** Why a kept certificate cannot be used, or undefined when it can. */
function unusable(certPem: string, keyPem: string, domain: string): string | undefined {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch {
    return "the certificate does not parse";
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(keyPem))) return "the key does not belong to the certificate";
  } catch {
    return "the key does not parse";
  }
  if (Date.parse(x509.validTo) - Date.now() < RENEW_BEFORE_MS) return "the certificate expires soon";
  if (x509.checkHost(domain) === undefined) return `the certificate is not for ${domain}`;
  return undefined;
}

/** Writes through a temporary file and a rename, so a crash never leaves half a key. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, text, { mode });
  // The umask may have narrowed or (for 0644) not; make the mode exact.
  await chmod(tmp, mode);
  await rename(tmp, path);
}

export async function loadTlsMaterial(settings: TlsSettings, domain: string, log: Logger): Promise<TlsMaterial> {
  if (settings.cert !== undefined && settings.key !== undefined) {
    const certPath = resolve(settings.cert);
    const keyPath = resolve(settings.key);
    const [cert, key] = await Promise.all([readFile(certPath, "utf8"), readFile(keyPath, "utf8")]);
    const x509 = new X509Certificate(cert);
    if (x509.checkHost(domain) === undefined) log.warn({ certPath, domain }, "the configured certificate does not name the domain; clients will refuse it");
    return { cert, key, source: "configured", certPath, keyPath, fingerprint256: x509.fingerprint256 };
  }

  const dir = resolve(settings.dataDir);
  const certPath = join(dir, `${fileStem(domain)}.crt`);
  const keyPath = join(dir, `${fileStem(domain)}.key`);
  let kept: { cert: string; key: string } | undefined;
  try {
    kept = { cert: await readFile(certPath, "utf8"), key: await readFile(keyPath, "utf8") };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (kept) {
    const problem = unusable(kept.cert, kept.key, domain);
    if (problem === undefined) {
      const fingerprint256 = new X509Certificate(kept.cert).fingerprint256;
      return { ...kept, source: "reused", certPath, keyPath, fingerprint256 };
    }
    log.warn({ certPath, problem }, "not reusing the kept self-signed certificate; making a new one");
  }

  const notBeforeDate = new Date(Date.now() - 3600_000); // some slack for clients with a slow clock
  const notAfterDate = new Date(notBeforeDate);
  notAfterDate.setFullYear(notAfterDate.getFullYear() + VALIDITY_YEARS);
  const pems = await makeSelfSigned(domain, notBeforeDate, notAfterDate);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomic(keyPath, pems.key, 0o600);
  await writeAtomic(certPath, pems.cert, 0o644);
  const fingerprint256 = new X509Certificate(pems.cert).fingerprint256;
  log.info({ certPath, keyPath, fingerprint256 }, "generated a self-signed certificate; configure tls.cert and tls.key for a real one");
  return { cert: pems.cert, key: pems.key, source: "generated", certPath, keyPath, fingerprint256 };
}

/**
 * Makes the certificate in a child process (self-signed-child.ts): node-forge
 * and the garbage of making a key would otherwise stay in the process that
 * serves, ~10 MB in each c2s, s2s and upload started on a fresh directory.
 */
function makeSelfSigned(domain: string, notBefore: Date, notAfter: Date): Promise<{ cert: string; key: string }> {
  const script = fileURLToPath(new URL("./self-signed-child.js", import.meta.url));
  return new Promise((res, rej) => {
    execFile(process.execPath, [script, domain, notBefore.toISOString(), notAfter.toISOString()], { maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        rej(new Error(`making a self-signed certificate for ${domain} failed: ${err.message} ${stderr.trim().slice(-1000)}`));
        return;
      }
      try {
        const { cert, key } = JSON.parse(stdout) as { cert: string; key: string };
        res({ cert, key });
      } catch (e) {
        rej(new Error(`making a self-signed certificate for ${domain}: unreadable answer (${(e as Error).message})`));
      }
    });
  });
}
