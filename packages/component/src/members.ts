/**
 * What a router tells the farm's own (trusted) processes, in its own
 * namespace (docs/router.md):
 *
 * - membership notices: which instances serve a name, for every name, on
 *   every change. With the same list and the same rendezvous rule, an SM
 *   knows which users it owns without asking anyone; with the c2s list it
 *   learns at once that a c2s died and ends that c2s's sessions.
 * - `<leaving/>`: the router is stopping; send through another router while
 *   it drains.
 */
import { escapeAttr, type Element } from "@jabberfarm/xml";

export const FARM_ROUTER_NS = "urn:jabberfarm:router:0";

/** `<members name='N'><instance id='I'/>...</members>` (an empty list once nobody serves N), sent to every trusted connection. */
export function membersElement(name: string, instances: readonly string[]): string {
  let s = `<members xmlns='${FARM_ROUTER_NS}' name='${escapeAttr(name)}'>`;
  for (const id of instances) s += `<instance id='${escapeAttr(id)}'/>`;
  return s + "</members>";
}

/** The instance ids of a received notice, or undefined if `el` is not one. */
export function readMembers(el: Element): { name: string; instances: string[] } | undefined {
  if (el.local !== "members" || el.ns !== FARM_ROUTER_NS) return undefined;
  const instances: string[] = [];
  for (const c of el.getChildren("instance")) if (c.attrs.id) instances.push(c.attrs.id);
  return { name: el.attrs.name ?? "", instances };
}

/** Sent by a stopping router to every trusted connection before its drain period. */
export const LEAVING_NOTICE = `<leaving xmlns='${FARM_ROUTER_NS}'/>`;
