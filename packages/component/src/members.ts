/**
 * Membership notices: a router tells the processes serving one name which
 * instances serve it (docs/router.md). With the same list and the same
 * rendezvous rule, an SM knows which users it owns without asking anyone,
 * and can handle a stanza between two of its own users without the round
 * trip through the router.
 */
import { escapeAttr, type Element } from "@jabberfarm/xml";

export const FARM_ROUTER_NS = "urn:jabberfarm:router:0";

/** `<members name='N'><instance id='I'/>...</members>`, sent by a router to every connection of N. */
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
