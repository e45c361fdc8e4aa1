// Sizes and switches of the bench scripts (side-by-side.mjs, scale.mjs) are
// environment variables. An empty variable counts as unset, so
// `USERS= node bench/scale.mjs` means the default, not zero.

/** The variable `key`, or `fallback` when it is unset or empty. */
export const envText = (key, fallback) => (process.env[key] === undefined || process.env[key] === "" ? fallback : process.env[key]);

/** The variable `key` as a number, `fallback` when unset or empty; a bad or negative value fails with the key and the value. */
export function envNumber(key, fallback) {
  const v = Number(envText(key, fallback));
  if (!Number.isFinite(v) || v < 0) throw new Error(`${key}=${process.env[key]} is not a number`);
  return v;
}
