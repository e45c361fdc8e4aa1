export interface Migration {
  /** Positive, strictly increasing along the list; gaps are allowed. */
  readonly version: number;
  readonly name: string;
  /** One or more statements; run in a single transaction with the version record. */
  readonly sql: string;
}
