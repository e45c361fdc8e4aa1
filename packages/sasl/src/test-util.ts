// Shared by the *.test.ts files; not exported from the package index.
import { SaslError, type SaslCondition } from "./errors.js";

/** An assert.throws / assert.rejects validator for a SaslError with this condition. */
export function saslError(condition: SaslCondition, message?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    if (!(err instanceof SaslError)) throw new Error(`expected a SaslError, got ${String(err)}`);
    if (err.condition !== condition) throw new Error(`expected condition ${condition}, got ${err.condition}: ${err.message}`);
    if (message !== undefined && !message.test(err.message)) throw new Error(`message ${JSON.stringify(err.message)} does not match ${message}`);
    return true;
  };
}
