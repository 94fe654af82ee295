/** What filters look at: a repository's artifact with its tags, labels and type. */
export interface ArtifactFacts {
  repository: string;
  /** Tags of the artifact (empty: untagged). */
  tags: readonly string[];
  /** Labels (Harbor sources only; a registry has none). */
  labels?: readonly string[] | undefined;
  /** Harbor's artifact type (`IMAGE`, `CHART`, ...), when the source knows it. */
  type?: string | undefined;
}

/**
 * One of Harbor's accessories of an artifact (`with_accessory=true`): a signature, an SBOM, an
 * attestation, any OCI referrer (`type`: `signature.cosign`, `signature.notation`,
 * `harbor.sbom`, `subject.accessory`, ...).
 */
export interface Accessory {
  digest: string;
  type: string;
}

/** An artifact as a source lists it: its repository, tags, and what the source knows besides. */
export interface SourceArtifact extends ArtifactFacts {
  /** Known when the source lists by artifact (Harbor); resolved by the planner otherwise. */
  digest?: string | undefined;
  /** Harbor's accessories of the artifact; undefined when the source does not list them. */
  accessories?: Accessory[] | undefined;
}

/**
 * A source of a rule, listed page by page so a repository of 10,000 tags never sits in memory
 * as artifacts: the registry protocol, or Harbor's API.
 */
export interface Source {
  /**
   * Repositories (full paths) a name pattern may select. A pattern without wildcards names
   * them directly (no catalog, as Harbor does); others list everything and the caller filters.
   */
  repositories(pattern: string, signal?: AbortSignal): AsyncIterable<string>;
  /** The artifacts of one repository. */
  artifacts(repository: string, signal?: AbortSignal): AsyncIterable<SourceArtifact>;
}
