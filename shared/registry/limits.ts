/**
 * Bounds on what a registry's answers can make the replicator do: pages walked, index fan-out,
 * manifest bytes read per copy, index nesting. One block in the config (`limits:`), the same
 * for every registry of a process.
 */
export interface Limits {
  /** Pages of one listing (`_catalog`, `tags/list`, a Harbor API list) before PAGINATION_LOOP. */
  maxPages: number;
  /** Distinct children of one index. */
  maxIndexChildren: number;
  /** Manifest bytes read from the source for one copy (all levels of an index together). */
  maxManifestBytes: number;
  /** Levels of nested indexes below the top manifest. */
  maxIndexDepth: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxPages: 10_000,
  maxIndexChildren: 1_000,
  maxManifestBytes: 64 * 1024 * 1024,
  maxIndexDepth: 4,
});
