import type { AcceptedComponent } from "@jabberfarm/component";
import { rendezvousPick, rendezvousSeed } from "@jabberfarm/component";

/** A live, authenticated component connection as the table holds it. */
export class Route {
  readonly rendezvousId: string;
  readonly rendezvousSeed: number;
  /** When the handshake succeeded (for `jabberfarm status`). */
  readonly since = new Date();

  constructor(readonly component: AcceptedComponent, readonly trusted: boolean) {
    this.rendezvousId = component.instance;
    this.rendezvousSeed = rendezvousSeed(component.instance);
  }

  get name(): string {
    return this.component.name;
  }
}

/**
 * Chooses among the connections that serve one name. `key` is the bare `to`
 * JID. Pluggable so that, say, a least-loaded rule can replace it per name.
 */
export type RoutingRule = (candidates: readonly Route[], key: string) => Route;

export const rendezvousRule: RoutingRule = (candidates, key) => rendezvousPick(candidates, key)!;

/** Name → the live connections that serve it. */
export class RoutingTable {
  private readonly byName = new Map<string, Route[]>();

  constructor(private readonly ruleFor: (name: string) => RoutingRule = () => rendezvousRule) {}

  add(route: Route): void {
    const list = this.byName.get(route.name);
    // Copy on write: a lookup in progress keeps a consistent array.
    this.byName.set(route.name, list ? [...list, route] : [route]);
  }

  remove(route: Route): void {
    const list = this.byName.get(route.name);
    if (!list) return;
    const rest = list.filter((r) => r !== route);
    if (rest.length === 0) this.byName.delete(route.name);
    else this.byName.set(route.name, rest);
  }

  /** Every connection serving `name` (empty when none). */
  candidates(name: string): readonly Route[] {
    return this.byName.get(name) ?? [];
  }

  /** The connection for a stanza to `key` (a bare JID) at `name`, or undefined when nobody serves it. */
  select(name: string, key: string): Route | undefined {
    const list = this.byName.get(name);
    if (!list) return undefined;
    if (list.length === 1) return list[0];
    return this.ruleFor(name)(list, key);
  }

  /** The connection of `name` whose process announced `instance`, if it is live. */
  byInstance(name: string, instance: string): Route | undefined {
    const list = this.byName.get(name);
    if (!list) return undefined;
    for (const r of list) if (r.rendezvousId === instance) return r;
    return undefined;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  get size(): number {
    let n = 0;
    for (const l of this.byName.values()) n += l.length;
    return n;
  }
}
