/**
 * Where a remote domain's server is (RFC 6120 §3.2, XEP-0368): SRV records
 * for `_xmpps-server._tcp` (direct TLS) and `_xmpp-server._tcp` (STARTTLS),
 * by priority then weight (at equal priority direct TLS first); without any,
 * the domain itself on port 5269. A target of "." means the domain offers
 * no service. Addresses come from the same resolver (A, then AAAA), so a
 * test's DNS server answers for its whole zone.
 */
import { Resolver } from "node:dns/promises";

export interface Target {
  host: string;
  port: number;
  directTls: boolean;
}

export interface Endpoint extends Target {
  address: string;
}

export class NoService extends Error {}

export class DomainResolver {
  private readonly resolver: Resolver;

  constructor(o: { servers?: string[] | undefined; timeoutMs?: number } = {}) {
    this.resolver = new Resolver({ timeout: o.timeoutMs ?? 3000, tries: 2 });
    if (o.servers !== undefined && o.servers.length > 0) this.resolver.setServers(o.servers);
  }

  /** The targets to try, in order. Throws NoService when the domain says it has none (SRV "."). */
  async targets(domain: string): Promise<Target[]> {
    const [tls, plain] = await Promise.all([this.srv(`_xmpps-server._tcp.${domain}`), this.srv(`_xmpp-server._tcp.${domain}`)]);
    const records = [
      ...tls.map((r) => ({ ...r, directTls: true })),
      ...plain.map((r) => ({ ...r, directTls: false })),
    ];
    if (records.length === 0) return [{ host: domain, port: 5269, directTls: false }];
    const usable = records.filter((r) => r.name !== "" && r.name !== ".");
    if (usable.length === 0) throw new NoService(`${domain} says it has no XMPP server (SRV target ".")`);
    usable.sort((a, b) => a.priority - b.priority || Number(b.directTls) - Number(a.directTls) || b.weight - a.weight);
    return usable.map((r) => ({ host: r.name, port: r.port, directTls: r.directTls }));
  }

  /** Every address of every target, in order. */
  async endpoints(domain: string): Promise<Endpoint[]> {
    const out: Endpoint[] = [];
    for (const t of await this.targets(domain)) {
      for (const address of await this.addresses(t.host)) out.push({ ...t, address });
    }
    return out;
  }

  async addresses(host: string): Promise<string[]> {
    if (/^[\d.]+$/.test(host) || host.includes(":")) return [host];
    const [v4, v6] = await Promise.all([
      this.resolver.resolve4(host).catch(() => [] as string[]),
      this.resolver.resolve6(host).catch(() => [] as string[]),
    ]);
    return [...v4, ...v6];
  }

  private async srv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>> {
    try {
      return await this.resolver.resolveSrv(name);
    } catch {
      return [];
    }
  }
}
