import { z } from "zod";

/** A process section's `metrics`: where its health server listens. Absent: no HTTP server. */
export const metricsEndpointSchema = z.object({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535),
}).strict();

export type MetricsEndpoint = z.output<typeof metricsEndpointSchema>;
