/**
 * Which domains are remote, as far as this SM can tell: not its own, not a
 * subdomain of it (the farm's services), not a name some farm process serves
 * (another domain of the farm), while at least one s2s is linked
 * (docs/s2s.md). A stanza for a remote domain travels to the s2s as a
 * confirmed relay route, so that an s2s dying with it loses nothing.
 */
export const S2S_COMPONENT = "s2s";

export class RemoteDomains {
  private readonly served = new Set<string>();

  constructor(private readonly domain: string, private readonly s2sName = S2S_COMPONENT) {}

  /** A membership notice (packages/component `membership`). */
  update(name: string, instances: ReadonlySet<string>): void {
    if (instances.size > 0) this.served.add(name);
    else this.served.delete(name);
  }

  isRemote(domain: string): boolean {
    if (domain === this.domain || domain.endsWith(`.${this.domain}`)) return false;
    return this.served.has(this.s2sName) && !this.served.has(domain);
  }
}
