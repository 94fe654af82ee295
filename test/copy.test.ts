// Image copy between two real docker-registry 2.8 instances: single images, multi-arch indexes,
// mounts of shared layers, chunked uploads with relative Locations, Harbor's override rules.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BlobLocations } from '../shared/copy/blob-locations.js';
import { copyImage } from '../shared/copy/image-copy.js';
import type { CopyEvent } from '../shared/copy/progress.js';
import { RegistryClient } from '../shared/registry/client.js';
import { parseReference } from '../shared/registry/reference.js';
import { imageLayout, indexLayout, pushLayout, type Layout } from './support/fixtures.js';
import { blobExists, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

describe('copyImage between real registries', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let image: Layout;
  let multi: Layout;
  let three: Layout;
  let base: Buffer;
  let appA: Layout;
  let appB: Layout;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry({ relativeUrls: true })]);
    base = randomBytes(300_000);
    [image, multi, appA, appB, three] = await Promise.all([
      imageLayout([{ size: 2_000_000 }, { size: 150_000 }, { size: 10 }]),
      indexLayout(
        [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
        [{ size: 400_000 }, { size: 50_000 }],
      ),
      imageLayout([{ size: 0, content: base }, { size: 20_000 }]),
      imageLayout([{ size: 0, content: base }, { size: 30_000 }]),
      indexLayout(
        [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
          { architecture: 's390x', os: 'linux' },
        ],
        [{ size: 20_000 }],
      ),
    ]);
    await Promise.all([
      pushLayout(image, `${src.host}/library/app:1.0`),
      pushLayout(multi, `${src.host}/library/multi:2.0`),
      pushLayout(appA, `${src.host}/team/a:1`),
      pushLayout(appB, `${src.host}/team/b:1`),
      pushLayout(three, `${src.host}/library/three:1`),
    ]);
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  const client = (r: TestRegistry) => new RegistryClient({ host: r.host, scheme: 'http' });
  const at = (r: TestRegistry, ref: string) => ({ client: client(r), ref: parseReference(`${r.host}/${ref}`) });

  it('copies a single image: same manifest digest, every blob present, nothing left open', async () => {
    const events: CopyEvent[] = [];
    const result = await copyImage(at(src, 'library/app:1.0'), at(dst, 'mirror/app:1.0'), { onEvent: (e) => events.push(e) });

    assert.equal(result.status, 'copied');
    assert.equal(result.digest, image.top.digest);
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '1.0'), image.top.digest);
    for (const b of image.blobs) assert.ok(await blobExists(dst.url, 'mirror/app', b.digest), `blob ${b.digest}`);
    assert.deepEqual(result.blobs, { copied: 4, skipped: 0, mounted: 0 });
    const blobBytes = image.blobs.reduce((n, b) => n + b.size, 0);
    assert.equal(result.bytes, blobBytes + image.top.size);
    // Progress: the source resolved (with what the destination has), a plan, then one blob-done per blob, then the manifest.
    assert.deepEqual(events.slice(0, 2).map((e) => e.kind), ['resolved', 'plan']);
    const resolved = events[0] as Extract<CopyEvent, { kind: 'resolved' }>;
    assert.deepEqual([resolved.digest, resolved.destinationDigest], [image.top.digest, undefined], 'the digest copied; nothing at the destination yet');
    assert.equal(events.filter((e) => e.kind === 'blob-done').length, 4);
    assert.equal(events.at(-1)?.kind, 'manifest-pushed');
  });

  it("follows Harbor's override rules: equal digest in sync, different skipped without override, copied with it", async () => {
    const again = await copyImage(at(src, 'library/app:1.0'), at(dst, 'mirror/app:1.0'));
    assert.equal(again.status, 'in_sync');
    assert.equal(again.bytes, 0);

    // mirror/app:1.0 now gets a different image
    await copyImage(at(src, 'team/a:1'), at(dst, 'mirror/app:1.0'));
    const skipped = await copyImage(at(src, 'library/app:1.0'), at(dst, 'mirror/app:1.0'), { override: false });
    assert.equal(skipped.status, 'skipped');
    assert.match(skipped.reason ?? '', /override is off/);
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '1.0'), appA.top.digest);

    const replaced = await copyImage(at(src, 'library/app:1.0'), at(dst, 'mirror/app:1.0'), { override: true });
    assert.equal(replaced.status, 'copied');
    assert.equal(replaced.blobs.skipped, 4, 'blobs already there are not uploaded again');
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '1.0'), image.top.digest);
  });

  it('copies a multi-arch index with every child by digest, then the index by tag', async () => {
    const result = await copyImage(at(src, 'library/multi:2.0'), at(dst, 'mirror/multi:2.0'), { concurrency: 3 });

    assert.equal(result.status, 'copied');
    assert.equal(await manifestDigest(dst.url, 'mirror/multi', '2.0'), multi.top.digest);
    for (const child of multi.children) {
      assert.equal(await manifestDigest(dst.url, 'mirror/multi', child.digest), child.digest, `child ${child.platform?.architecture}`);
    }
    for (const b of multi.blobs) assert.ok(await blobExists(dst.url, 'mirror/multi', b.digest));
    assert.equal(result.manifests.pushed, 3);
  });

  it('copies by digest and pushes by digest when the destination names no tag', async () => {
    const child = multi.children[1]!;
    const result = await copyImage(
      at(src, `library/multi@${child.digest}`),
      { client: client(dst), ref: { registry: dst.host, repository: 'bydigest/one', digest: child.digest } },
    );
    assert.equal(result.digest, child.digest);
    assert.equal(await manifestDigest(dst.url, 'bydigest/one', child.digest), child.digest);
  });

  it('uploads in chunks (PATCH with Content-Range) against relative Locations', async () => {
    const result = await copyImage(at(src, 'library/app:1.0'), at(dst, 'chunked/app:1.0'), { chunkSize: 256 * 1024 });
    assert.equal(result.status, 'copied');
    assert.equal(await manifestDigest(dst.url, 'chunked/app', '1.0'), image.top.digest);
    for (const b of image.blobs) assert.ok(await blobExists(dst.url, 'chunked/app', b.digest));
  });

  it('mounts a shared base layer within one registry instead of uploading it', async () => {
    const first = await copyImage(at(src, 'team/a:1'), at(src, 'copies/a:1'));
    assert.equal(first.blobs.mounted, 3, 'same registry: every blob mounted from the source repository');
    assert.equal(first.blobs.copied, 0);
    assert.equal(await manifestDigest(src.url, 'copies/a', '1'), appA.top.digest);
  });

  it('mounts at the destination a layer an earlier copy of this process put in another repository', async () => {
    const locations = new BlobLocations();
    const a = await copyImage(at(src, 'team/a:1'), at(dst, 'shared/a:1'), { locations });
    const b = await copyImage(at(src, 'team/b:1'), at(dst, 'shared/b:1'), { locations });
    assert.equal(a.blobs.copied, 3);
    assert.equal(b.blobs.mounted, 1, 'the base layer is mounted from shared/a');
    assert.equal(b.blobs.copied, 2, 'its own layer and config are uploaded');
    assert.equal(await manifestDigest(dst.url, 'shared/b', '1'), appB.top.digest);
  });

  it('platforms: one platform makes the tag that image; several make an index of exactly those children', async () => {
    const arm = three.children[1]!;
    const one = await copyImage(at(src, 'library/three:1'), at(dst, 'plat/arm:1'), { platforms: ['linux/arm64'] });
    assert.equal(one.digest, arm.digest);
    assert.equal(await manifestDigest(dst.url, 'plat/arm', '1'), arm.digest);

    const two = await copyImage(at(src, 'library/three:1'), at(dst, 'plat/two:1'), { platforms: ['linux/amd64', 'linux/arm64/v8'] });
    assert.notEqual(two.digest, three.top.digest, 'a new index');
    assert.equal(await manifestDigest(dst.url, 'plat/two', '1'), two.digest);
    assert.equal(await manifestDigest(dst.url, 'plat/two', three.children[2]!.digest), undefined, 's390x not copied');
    assert.equal(two.manifests.pushed, 3);
    const again = await copyImage(at(src, 'library/three:1'), at(dst, 'plat/two:1'), { platforms: ['linux/amd64', 'linux/arm64/v8'] });
    assert.equal(again.status, 'in_sync', 'the narrowed index is stable: a re-run is in sync');

    const all = await copyImage(at(src, 'library/three:1'), at(dst, 'plat/all:1'), { platforms: ['linux/amd64', 'linux/arm64', 'linux/s390x'] });
    assert.equal(all.digest, three.top.digest, 'every platform: the index as received');
    await assert.rejects(copyImage(at(src, 'library/three:1'), at(dst, 'plat/none:1'), { platforms: ['windows/amd64'] }), { code: 'PLATFORM_UNAVAILABLE' });
  });
});
