// Real faults from a proxy in front of real registries: connections dropped mid-blob on either
// side, 500s, 429 with Retry-After, corrupt bytes, a destination that keeps failing.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { copyImage } from '../shared/copy/image-copy.js';
import type { CopyEvent } from '../shared/copy/progress.js';
import type { RetryPolicy } from '../shared/registry/backoff.js';
import { RegistryClient } from '../shared/registry/client.js';
import { RegistryError } from '../shared/registry/errors.js';
import { parseReference } from '../shared/registry/reference.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { blobExists, liveUploads, manifestDigest, manifestRevisions } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

/** Fast backoff so failing-for-good cases finish quickly; Retry-After still wins. */
const FAST: RetryPolicy = { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 200, maxRetryAfterMs: 5_000 };
const MiB = 1024 * 1024;
/** Matches the final `PUT ?digest=` of one blob's upload. */
const digestParam = (digest: string) => new RegExp(`digest=${encodeURIComponent(digest)}`);

describe('copy under faults', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  let image: Layout;
  let big: { digest: string; size: number };
  let n = 0;
  let repo: string;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    image = await imageLayout([{ size: 3 * MiB }, { size: 64 * 1024 }]);
    await pushLayout(image, `${src.host}/library/app:1.0`);
    big = image.blobs.reduce((a, b) => (b.size > a.size ? b : a));
    blobPath = new RegExp(`/blobs/${big.digest}$`);
  });
  beforeEach(async () => {
    await Promise.all([srcProxy?.stop(), dstProxy?.stop()]);
    [srcProxy, dstProxy] = await Promise.all([startFaultProxy(src.host), startFaultProxy(dst.host)]);
    repo = `faults/app${++n}`;
  });
  after(async () => {
    await Promise.all([srcProxy?.stop(), dstProxy?.stop(), src?.stop(), dst?.stop()]);
  });

  const copy = (opts: { chunkSize?: number; onEvent?: (e: CopyEvent) => void } = {}) =>
    copyImage(
      { client: new RegistryClient({ host: srcProxy.host, scheme: 'http', retry: FAST }), ref: parseReference(`${srcProxy.host}/library/app:1.0`) },
      { client: new RegistryClient({ host: dstProxy.host, scheme: 'http', retry: FAST }), ref: parseReference(`${dstProxy.host}/${repo}:1.0`) },
      { concurrency: 2, ...opts },
    );
  let blobPath: RegExp;
  const assertCopied = async () => {
    assert.equal(await manifestDigest(dst.url, repo, '1.0'), image.top.digest);
    for (const b of image.blobs) assert.ok(await blobExists(dst.url, repo, b.digest));
    assert.deepEqual(await liveUploads(dst.url, dstProxy.log), [], 'no upload session left open');
  };

  it('source dropped mid-blob: the upload stays open and the source resumes with a Range GET', async () => {
    srcProxy.add({ method: 'GET', path: blobPath, fault: { kind: 'drop-response', afterBytes: 1_000_000 } });
    await copy();
    await assertCopied();
    const gets = srcProxy.log.filter((e) => e.method === 'GET' && blobPath.test(e.path));
    assert.equal(gets.length, 2);
    assert.match(String(gets[1]!.headers.range), /^bytes=\d+-$/);
    const served = srcProxy.bytesServed(blobPath);
    assert.ok(served <= big.size + 64 * 1024, `read ${served} bytes for a ${big.size}-byte blob`);
    const uploads = dstProxy.log.filter((e) => e.method === 'POST' && /blobs\/uploads\/$/.test(e.path.split('?')[0]!));
    assert.equal(uploads.length, image.blobs.length, 'one upload session per blob: the dropped source did not restart the upload');
  });

  it('source dropped mid-blob in chunked mode: bytes read stay within size plus one chunk', async () => {
    const chunk = 512 * 1024;
    srcProxy.add({ method: 'GET', path: blobPath, fault: { kind: 'drop-response', afterBytes: 1_300_000 } });
    await copy({ chunkSize: chunk });
    await assertCopied();
    const served = srcProxy.bytesServed(blobPath);
    assert.ok(served <= big.size + chunk, `read ${served} bytes for a ${big.size}-byte blob`);
    assert.ok(dstProxy.log.some((e) => e.method === 'PATCH'), 'chunked upload used PATCH');
  });

  it('destination dropped mid-PUT: a new upload session, the copy completes', async () => {
    dstProxy.add({ method: 'PUT', path: digestParam(big.digest), fault: { kind: 'drop-request', afterBytes: 1_500_000 } });
    const events: CopyEvent[] = [];
    await copy({ onEvent: (e) => events.push(e) });
    await assertCopied();
    assert.ok(events.some((e) => e.kind === 'retry' && e.what.startsWith('upload')), 'the retry is reported');
  });

  it('destination PATCH failing after the registry kept earlier chunks: resume after the last acknowledged chunk', async () => {
    const chunk = 512 * 1024;
    // The third PATCH of the big blob is answered 500 without reaching the registry.
    let patches = 0;
    dstProxy.add({
      method: 'PATCH',
      path: { test: () => ++patches === 3 } as unknown as RegExp,
      fault: { kind: 'status', status: 500 },
    });
    await copy({ chunkSize: chunk });
    await assertCopied();
    const served = srcProxy.bytesServed(blobPath);
    assert.ok(served <= big.size + chunk, `read ${served} bytes for a ${big.size}-byte blob`);
    assert.ok(dstProxy.log.some((e) => e.method === 'GET' && e.path.includes('/blobs/uploads/')), 'asked the upload status');
  });

  it('destination dropped mid-PATCH (docker-registry cancels that session): a new session completes the blob', async () => {
    dstProxy.add({ method: 'PATCH', path: /\/blobs\/uploads\//, fault: { kind: 'drop-request', afterBytes: 700_000 } });
    await copy({ chunkSize: 1024 * 1024 });
    await assertCopied();
  });

  it("chunked upload honours the registry's OCI-Chunk-Min-Length", async () => {
    const min = 1024 * 1024;
    dstProxy.add({ method: 'POST', path: /\/blobs\/uploads\/$/, fault: { kind: 'add-headers', headers: { 'oci-chunk-min-length': String(min) } }, times: 10 });
    await copy({ chunkSize: 256 * 1024 });
    await assertCopied();
    const patches = dstProxy.log.filter((e) => e.method === 'PATCH' && e.requestBytes > 100_000);
    assert.ok(patches.length >= 3, `${patches.length} PATCHes of the big blob`);
    // Every PATCH but the last of a blob carries at least the minimum.
    const sizes = patches.map((e) => e.requestBytes);
    assert.ok(sizes.slice(0, -1).every((n) => n >= min), `PATCH sizes ${sizes.join(', ')}`);
  });

  it('500 then success: the request is retried', async () => {
    srcProxy.add({ method: 'GET', path: /\/manifests\/1\.0$/, fault: { kind: 'status', status: 500 } });
    await copy();
    await assertCopied();
    assert.equal(srcProxy.log.filter((e) => e.method === 'GET' && /\/manifests\/1\.0$/.test(e.path)).length, 2);
  });

  it('429 with Retry-After: 1 is waited out before the next request', async () => {
    dstProxy.add({
      method: 'PUT',
      path: /\/manifests\/1\.0$/,
      fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS"}]}' },
    });
    await copy();
    await assertCopied();
    const puts = dstProxy.log.filter((e) => e.method === 'PUT' && /\/manifests\/1\.0$/.test(e.path));
    assert.equal(puts.length, 2);
    assert.ok(puts[1]!.at - puts[0]!.at >= 1000, `waited ${puts[1]!.at - puts[0]!.at} ms`);
  });

  it('a destination failing for good: bounded attempts and no manifest left behind', async () => {
    dstProxy.add({ method: 'PUT', path: /\/blobs\/uploads\//, fault: { kind: 'status', status: 503 }, times: 1000 });
    await assert.rejects(copy(), (err: unknown) => err instanceof RegistryError && err.status === 503);
    assert.equal(await manifestDigest(dst.url, repo, '1.0'), undefined);
    assert.deepEqual(await manifestRevisions(dst.storage, repo), []);
    // Each blob tries as often as the retry policy allows, no more (blobs run in parallel).
    const attempts = dstProxy.log.filter((e) => e.method === 'PUT').length;
    assert.ok(attempts <= image.blobs.length * FAST.maxAttempts, `${attempts} PUT attempts`);
  });

  it('corrupt source bytes: the digest check aborts, the upload session is deleted, no manifest', async () => {
    srcProxy.add({ method: 'GET', path: blobPath, fault: { kind: 'corrupt-response', atByte: 12345 } });
    await assert.rejects(copy(), { code: 'DIGEST_MISMATCH' });
    assert.equal(await manifestDigest(dst.url, repo, '1.0'), undefined);
    assert.equal(await blobExists(dst.url, repo, big.digest), false);
    assert.ok(dstProxy.log.some((e) => e.method === 'DELETE' && e.path.includes('/blobs/uploads/')), 'upload cancelled');
    assert.deepEqual(await liveUploads(dst.url, dstProxy.log), []);
  });
});
