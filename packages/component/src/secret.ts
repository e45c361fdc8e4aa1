/**
 * The shared secrets of the component handshake (XEP-0114), checked where
 * they are configured: the router's `components` and each process's
 * `secret`. The deploy files ship placeholders so that they read well; a
 * farm started with one would let anybody who read them in as a trusted
 * process (trusted components may send as any user), so a placeholder, like
 * a secret too short to resist guessing, stops the process at start.
 */
import { z } from "zod";

export const MIN_SECRET_LENGTH = 12;

/** How to make a good secret, for the error messages. */
export const MAKE_A_SECRET =
  "make one with `openssl rand -hex 32` or `node -e \"console.log(require('crypto').randomBytes(32).toString('hex'))\"`";

/** Values the example and deploy files carry (farm.example.yaml, docker-compose.yml, deploy/). */
const PLACEHOLDER = /^(change-?me|set-by-environment$|replace-?me|secret$|password$)/i;

/** Why `secret` must not be used, or undefined when it may. */
export function secretProblem(secret: string): string | undefined {
  if (PLACEHOLDER.test(secret.trim())) return `a placeholder from the example files, not a secret: ${MAKE_A_SECRET}`;
  if (secret.length < MIN_SECRET_LENGTH) return `a secret of at least ${MIN_SECRET_LENGTH} characters: ${MAKE_A_SECRET}`;
  return undefined;
}

/** A component secret in a zod schema: refuses placeholders and short ones, saying how to make one. */
export const secretSchema = z.string().superRefine((s, ctx) => {
  const problem = secretProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});
