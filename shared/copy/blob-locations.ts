/**
 * Remembers which repositories of a destination registry hold a blob, so a later copy into
 * another repository of that registry mounts it instead of uploading it again (the shared base
 * layer of many images). Bounded: the oldest digests are forgotten first.
 */
export class BlobLocations {
  private readonly byKey = new Map<string, string[]>();

  constructor(private readonly maxDigests = 50_000) {}

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
