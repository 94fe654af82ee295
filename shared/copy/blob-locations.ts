/**
 * Remembers which repositories of a destination registry hold a blob, so a later copy into
 * another repository of that registry mounts it instead of uploading it again (the shared base
 * layer of many images), and which manifests this process pushed where, so another tag of the
 * same image costs only its manifest PUT. Bounded: the oldest digests are forgotten first.
 */
export class BlobLocations {
  private readonly byKey = new Map<string, string[]>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** `host repository digest` -> until when it is trusted (epoch ms). */
  private readonly manifests = new Map<string, number>();

  /**
   * Runs `copy` of a blob into a repository unless a copy of that same blob into that same
   * repository is already running in this process (tags of one artifact, or images sharing a
   * layer, copied at once): then waits for it and reports 'skipped'. Concurrent uploads of one
   * blob into one repository waste bandwidth and race in docker-registry 2.8 (a manifest PUT
   * then fails with MANIFEST_BLOB_UNKNOWN). If the running copy fails, this one tries itself.
   */
  async once<T>(host: string, repository: string, digest: string, copy: () => Promise<T>, skipped: T): Promise<T> {
    const key = `${host} ${repository} ${digest}`;
    const running = this.inFlight.get(key);
    if (running) {
      try {
        await running;
        return skipped;
      } catch {
        // fall through: try ourselves
      }
    }
    const mine = copy();
    this.inFlight.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.inFlight.get(key) === mine) this.inFlight.delete(key);
    }
  }

  constructor(
    private readonly maxDigests = 50_000,
    /** How long a pushed manifest is trusted to be complete at its destination. */
    private readonly manifestTtlMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records that this process pushed manifest `digest` into `repository` at `host` (or found a
   * tag there naming it): the registry accepted it, so every blob and child it names is there.
   */
  addManifest(host: string, repository: string, digest: string): void {
    const key = `${host} ${repository} ${digest}`;
    this.manifests.delete(key);
    this.manifests.set(key, this.now() + this.manifestTtlMs);
    if (this.manifests.size > this.maxDigests) {
      const oldest = this.manifests.keys().next().value;
      if (oldest !== undefined) this.manifests.delete(oldest);
    }
  }

  /**
   * True when `digest` was pushed into `repository` at `host` by this process within the last
   * few minutes: a copy of another tag of it needs no blob or child checked. Trusted for minutes
   * only, since a registry's garbage collection may remove content no tag names any more.
   */
  hasManifest(host: string, repository: string, digest: string): boolean {
    const key = `${host} ${repository} ${digest}`;
    const until = this.manifests.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.manifests.delete(key);
    return false;
  }

  /** Forgets a pushed manifest (the registry said something it names is missing). */
  forgetManifest(host: string, repository: string, digest: string): void {
    this.manifests.delete(`${host} ${repository} ${digest}`);
  }

  /** Records that `repository` at `host` holds `digest`. */
  add(host: string, digest: string, repository: string): void {
    const key = `${host} ${digest}`;
    const repos = this.byKey.get(key) ?? [];
    if (!repos.includes(repository)) repos.unshift(repository);
    if (repos.length > 4) repos.length = 4;
    this.byKey.delete(key);
    this.byKey.set(key, repos);
    if (this.byKey.size > this.maxDigests) {
      const oldest = this.byKey.keys().next().value;
      if (oldest !== undefined) this.byKey.delete(oldest);
    }
  }

  /** Repositories at `host` known to hold `digest`, most recent first. */
  get(host: string, digest: string): readonly string[] {
    return this.byKey.get(`${host} ${digest}`) ?? [];
  }
}
