/**
 * The config every farm process needs to be a component: its instance id,
 * the routers to link to, and its shared secret. One definition, spread into
 * each process's zod schema.
 */
import { z } from "zod";
import type { Component } from "./pool.js";
import { secretSchema } from "./secret.js";

export const routerAddressSchema = z.object({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(1).max(65535),
}).strict();

export function componentLinkFields(defaultInstance: string) {
  return {
    /** Stable id of this process among those sharing its name (docs/router.md, instance addressing). */
    instance: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-'").default(defaultInstance),
    routers: z.array(routerAddressSchema).min(1).default([{ host: "127.0.0.1", port: 5347 }]),
    /** The router's shared secret for this process's component name. */
    secret: secretSchema,
  };
}

interface LinkLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** One log line per router link that comes up or goes down. */
export function logLinkEvents(component: Component, log: LinkLog): void {
  component.on("up", (l) => log.info({ router: l.label }, "linked to router"));
  component.on("leaving", (l) => log.info({ router: l.label }, "router leaving; sending through the others"));
  component.on("down", (l, r) => log.warn({ router: l.label, condition: r.error?.condition, socketError: r.socketError }, "router link down"));
}
