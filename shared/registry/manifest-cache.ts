import type { Manifest } from './manifest.js';

/**
 * Manifests a client has read, by repository and digest. A manifest is content-addressed: the
 * bytes of `repo@sha256:...` were checked against that digest when read and can never change,
 * so a copy that asks for it again (many tags of one image, a retried task, the tags of one
 * Harbor artifact) is answered from here instead of with another GET. Bounded in bytes (oldest
 * first out), and an entry is kept a few minutes only: the source may delete the manifest, and
 * a copy should then fail as it would have without this.
 */
export class ManifestCache {
  private readonly entries = new Map<string, { manifest: Manifest; until: number }>();
  private bytes = 0;

  constructor(
    private readonly maxBytes = 8 * 1024 * 1024,
    private readonly ttlMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(repository: string, digest: string): Manifest | undefined {
    const key = `${repository}@${digest}`;
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until <= this.now()) {
      this.delete(key);
      return undefined;
    }
    return e.manifest;
  }

  add(repository: string, manifest: Manifest): void {
    const size = manifest.bytes.length;
    if (size > this.maxBytes / 8) return; // a large index would push out everything else
    const key = `${repository}@${manifest.digest}`;
    this.delete(key);
    this.entries.set(key, { manifest, until: this.now() + this.ttlMs });
    this.bytes += size;
    for (const k of this.entries.keys()) {
      if (this.bytes <= this.maxBytes) break;
      this.delete(k);
    }
  }

  private delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.bytes -= e.manifest.bytes.length;
  }
}
