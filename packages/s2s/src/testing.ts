/**
 * Kit for federation tests (this package's and test/src's): a DNS zone
 * served on loopback by dns2 (SRV, A), and a test CA made with openssl that
 * issues server certificates for domains. Not part of the process; exported
 * as `@jabberfarm/s2s/testing`.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dns2, { Packet } from "dns2";

/** RFC 1035 §4.1.1. */
const NXDOMAIN = 3;

export interface SrvRecord {
  priority?: number;
  weight?: number;
  port: number;
  target: string;
}

/** A zone on 127.0.0.1 (UDP): SRV and A records the test sets; everything else NXDOMAIN. */
export class TestZone {
  readonly srv = new Map<string, SrvRecord[]>();
  readonly a = new Map<string, string[]>();
  private readonly server = dns2.createUDPServer((request, send) => void send(this.answer(request)));
  port = 0;

  async listen(): Promise<number> {
    await this.server.listen(0, "127.0.0.1");
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** `_xmpp-server._tcp.DOMAIN` (or `_xmpps-server` when `directTls`) → targets. */
  serve(domain: string, records: SrvRecord[], directTls = false): void {
    this.srv.set(`${directTls ? "_xmpps-server" : "_xmpp-server"}._tcp.${domain}`, records);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private answer(request: Packet): Packet {
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    response.header.ra = 1;
    const q = request.questions[0];
    const name = q?.name.toLowerCase() ?? "";
    const base = { name: q?.name ?? "", class: Packet.CLASS.IN, ttl: 0 };
    const srv = this.srv.get(name);
    const a = this.a.get(name);
    if (srv !== undefined) {
      if (q?.type === Packet.TYPE.SRV) {
        for (const r of srv) response.answers.push({ ...base, type: Packet.TYPE.SRV, priority: r.priority ?? 0, weight: r.weight ?? 10, port: r.port, target: r.target } as never);
      }
    } else if (a !== undefined) {
      if (q?.type === Packet.TYPE.A) for (const address of a) response.answers.push({ ...base, type: Packet.TYPE.A, address } as never);
    } else {
      response.header.rcode = NXDOMAIN;
    }
    return response;
  }
}

/** A certificate authority for tests, and the server certificates it issues (PEM files in a temp dir). */
export class TestCa {
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;

  constructor(name = "jabberfarm test CA") {
    this.dir = mkdtempSync(join(tmpdir(), "jf-ca-"));
    this.keyPath = join(this.dir, "ca.key");
    this.certPath = join(this.dir, "ca.crt");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
      "-subj", `/CN=${name}`, "-keyout", this.keyPath, "-out", this.certPath,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], { stdio: "ignore" });
  }

  get pem(): string {
    return readFileSync(this.certPath, "utf8");
  }

  /** A certificate for `domain` (and its subdomains named in `alt`), for both server and client use. */
  issue(domain: string, alt: string[] = []): { cert: string; key: string } {
    const key = join(this.dir, `${domain}.key`);
    const csr = join(this.dir, `${domain}.csr`);
    const cert = join(this.dir, `${domain}.crt`);
    const ext = join(this.dir, `${domain}.ext`);
    writeFileSync(ext, [
      "basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment", "extendedKeyUsage=serverAuth,clientAuth",
      `subjectAltName=${[domain, ...alt].map((d) => `DNS:${d}`).join(",")}`,
    ].join("\n") + "\n");
    execFileSync("openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${domain}`, "-keyout", key, "-out", csr], { stdio: "ignore" });
    execFileSync("openssl", ["x509", "-req", "-in", csr, "-CA", this.certPath, "-CAkey", this.keyPath, "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", cert], { stdio: "ignore" });
    return { cert, key };
  }
}
