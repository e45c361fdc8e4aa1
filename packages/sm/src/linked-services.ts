/**
 * The services linked to the routers under our domain (group chat,
 * upload, any external component named `NAME.DOMAIN`), as the routers'
 * membership notices tell this SM: what the server's disco#items lists
 * (XEP-0030 §4, the way clients find `conference.` and `upload.`).
 */
export class LinkedServices {
  private readonly names = new Set<string>();

  constructor(private readonly domain: string) {}

  /** A membership notice (packages/component `membership`): `name` is served by these instances now. */
  update(name: string, instances: ReadonlySet<string>): void {
    if (!name.endsWith(`.${this.domain}`)) return;
    if (instances.size > 0) this.names.add(name);
    else this.names.delete(name);
  }

  list(): string[] {
    return [...this.names].sort();
  }
}
