import { z } from "zod";
import { componentLinkFields } from "@jabberfarm/component";
import { metricsEndpointSchema } from "@jabberfarm/metrics";

export const xdbConfigSchema = z.object({
  ...componentLinkFields("xdb-1"),
  /** PostgreSQL connection string; without it the embedded PGlite in `dataDir` is used. */
  databaseUrl: z.string().url().optional(),
  /** Where PGlite keeps its files (ignored with databaseUrl). */
  dataDir: z.string().min(1).default("./.jabberfarm/db"),
  poolSize: z.number().int().min(1).max(200).default(10),
  /** Health and Prometheus endpoints (GET /metrics, /healthz, /readyz); absent: none. */
  metrics: metricsEndpointSchema.optional(),
}).strict();

export type XdbConfigInput = z.input<typeof xdbConfigSchema>;
export type XdbConfig = z.output<typeof xdbConfigSchema>;
