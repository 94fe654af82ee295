// Rate limits that hold across copiers: several copiers in one process, each with its own
// clients, backoff and table connection as separate Lambdas would have, share a registry's
// explicit max_concurrency and requests_per_second and every host's throttle (429,
// ratelimit-remaining: 0) through the table (DynamoDB on dynalite). A proxy in front of a real
// registry counts concurrent requests and answers 429. Each shared case is set against the same
// load with per-copier limits, so the assertions can fail.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { DynamoDBSharedLimits } from '../shared/adapters/aws/dynamodb-limits.js';
import { ensureTable } from '../shared/adapters/aws/dynamodb-store.js';
import { copyImage } from '../shared/copy/image-copy.js';
import { HostStates } from '../shared/registry/backoff.js';
import { MemoryThrottleStore, rateLimitRemaining } from '../shared/registry/host-throttle.js';
import { parseReference } from '../shared/registry/reference.js';
import type { RegistryConfig } from '../shared/rules/config-schema.js';
import { RegistryClients, type SharedLimitStores } from '../shared/rules/registry-endpoint.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { startFaultProxy, type FaultProxy, type ProxyLogEntry } from './support/fault-proxy.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const TABLE = 'replicator-limits';
const COPIERS = 4;

/** The most entries whose [at, endedAt] intervals overlap at one instant. */
function maxOverlap(entries: ProxyLogEntry[]): number {
  const edges = entries.flatMap((e) => [
    { t: e.at, d: 1 },
    { t: e.endedAt ?? Date.now(), d: -1 },
  ]);
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const e of edges) max = Math.max(max, (now += e.d));
  return max;
}

describe('limits shared by every copier', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let proxy: FaultProxy;
  let server: ReturnType<typeof dynalite>;
  let endpoint: string;
  const images: Layout[] = [];

  before(async () => {
    server = dynalite({ createTableMs: 0 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = dynamo();
    await ensureTable(client, TABLE);
    client.destroy();
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy(src.host);
    for (let i = 0; i < COPIERS; i++) {
      // Two layers above the small-blob size each: transfers that take a slot.
      const image = await imageLayout([{ size: 600_000 + i }, { size: 700_000 + i }]);
      await pushLayout(image, `${src.host}/team/app:v${i}`);
      images.push(image);
    }
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), proxy?.stop()]);
    await new Promise<void>((r) => server?.close(() => r()));
  });

  const dynamo = () => new DynamoDBClient({ endpoint, region: 'local', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });

  /** `COPIERS` copiers, each with its own clients, backoff and table connection (separate Lambdas). */
  function copiers(hq: Partial<RegistryConfig>, shared: boolean): Array<{ clients: RegistryClients; reg: RegistryConfig }> {
    return Array.from({ length: COPIERS }, () => {
      const limits = new DynamoDBSharedLimits(dynamo(), TABLE);
      const stores: SharedLimitStores = shared ? { throttle: limits, budget: limits, throttleCacheMs: 200 } : { throttle: new MemoryThrottleStore(), throttleCacheMs: 0 };
      const clients = new RegistryClients({ secrets: {}, hosts: new HostStates(), shared: stores });
      return { clients, reg: { name: 'hq', type: 'docker-registry', url: proxy.url, insecure: false, create_repositories: false, ...hq } as RegistryConfig };
    });
  }
  const dest = (): RegistryConfig => ({ name: 'dest', type: 'docker-registry', url: dst.url, insecure: false, create_repositories: false }) as RegistryConfig;

  /** Each copier copies its own tag, all at once; the source's blob GETs as the proxy saw them. */
  async function copyAll(hq: Partial<RegistryConfig>, shared: boolean, ns: string): Promise<ProxyLogEntry[]> {
    const start = proxy.log.length;
    await Promise.all(
      copiers(hq, shared).map(async ({ clients, reg }, i) => {
        const [from, to] = await Promise.all([clients.get(reg), clients.get(dest())]);
        const result = await copyImage(
          { client: from, ref: parseReference(`${proxy.host}/team/app:v${i}`) },
          { client: to, ref: parseReference(`${dst.host}/${ns}/app:v${i}`) },
        );
        assert.equal(result.digest, images[i]!.top.digest);
      }),
    );
    return proxy.log.slice(start).filter((e) => e.method === 'GET' && /\/blobs\/sha256:/.test(e.path) && e.responseBytes > 500_000);
  }

  it('max_concurrency: 2 holds across copiers (blob transfers at the source, as a counting proxy sees them)', async (t) => {
    // Each large blob takes about half a second to serve, so transfers overlap unless held back.
    proxy.add({ method: 'GET', path: /\/blobs\/sha256:/, fault: { kind: 'throttle', bytesPerSecond: 1_500_000 }, times: 1_000 });
    const sharedGets = await copyAll({ max_concurrency: 2 }, true, 'shared-slots');
    const localGets = await copyAll({ max_concurrency: 2 }, false, 'local-slots');
    assert.equal(sharedGets.length, COPIERS * 2);
    t.diagnostic(`blob transfers at once: ${maxOverlap(sharedGets)} shared, ${maxOverlap(localGets)} with per-copier limits`);
    assert.ok(maxOverlap(sharedGets) <= 2, `shared: ${maxOverlap(sharedGets)} transfers at once`);
    // Per copier, each keeps its own 2: the same load overlaps more.
    assert.ok(maxOverlap(localGets) > 2, `per copier: ${maxOverlap(localGets)} transfers at once`);
  });

  it('requests_per_second: 10 holds across copiers: never more than a burst plus the rate in any second', async (t) => {
    const run = async (shared: boolean) => {
      const start = proxy.log.length;
      const began = Date.now();
      await Promise.all(
        copiers({ requests_per_second: 10 }, shared).map(async ({ clients, reg }, i) => {
          const client = await clients.get(reg);
          for (let n = 0; n < 10; n++) assert.ok(await client.headManifest('team/app', `v${i}`));
        }),
      );
      return { took: Date.now() - began, log: proxy.log.slice(start) };
    };
    const shared = await run(true);
    // 44 requests (a ping per copier), 10 a second with a burst of 10: at least 3.4 s.
    assert.equal(shared.log.length, 44);
    assert.ok(shared.took >= 3_000, `shared: ${shared.took} ms`);
    for (const e of shared.log) {
      const inSecond = shared.log.filter((o) => o.at >= e.at && o.at < e.at + 1_000).length;
      assert.ok(inSecond <= 20, `${inSecond} requests in the second after ${e.at}`);
    }
    const local = await run(false);
    const busiest = Math.max(...shared.log.map((e) => shared.log.filter((o) => o.at >= e.at && o.at < e.at + 1_000).length));
    t.diagnostic(`44 requests: ${shared.took} ms shared (at most ${busiest} in any second), ${local.took} ms with per-copier limits`);
    assert.ok(local.took < shared.took / 2, `per copier: ${local.took} ms against ${shared.took} ms`);
  });

  /**
   * Copiers sending manifest HEADs one after another for `ms`; returns the log of that period.
   * Bounded: at most 200 requests per copier.
   */
  async function busy(shared: boolean, ms: number, during: () => void): Promise<ProxyLogEntry[]> {
    const start = proxy.log.length;
    const stopAt = Date.now() + ms;
    const all = copiers({}, shared);
    await Promise.all(all.map(async ({ clients, reg }) => (await clients.get(reg)).ping()));
    during();
    await Promise.all(
      all.map(async ({ clients, reg }, i) => {
        const client = await clients.get(reg);
        for (let n = 0; n < 200 && Date.now() < stopAt; n++) {
          await client.headManifest('team/app', `v${i}`).catch(() => undefined);
          await sleep(20);
        }
      }),
    );
    return proxy.log.slice(start).filter((e) => e.method === 'HEAD');
  }

  it('a 429 with Retry-After stops every copier until then; one probe goes first', async () => {
    const run = (shared: boolean) =>
      busy(shared, 4_000, () => proxy.add({ method: 'HEAD', path: /\/manifests\//, fault: { kind: 'status', status: 429, headers: { 'retry-after': '2' } } }));
    const log = await run(true);
    const t0 = log.find((e) => e.status === 429)!.at;
    // Requests already sent, and a copier that last read the table before the 429, may still
    // arrive within its read cache (200 ms); then nothing until Retry-After ends.
    const during = log.filter((e) => e.at > t0 + 400 && e.at < t0 + 1_950);
    assert.deepEqual(during.map((e) => e.at - t0), [], 'no copier called the host during Retry-After');
    const afterwards = log.filter((e) => e.at >= t0 + 1_950);
    assert.ok(afterwards.length > 10, `${afterwards.length} requests after the throttle`);
    // The first request after it was alone: the probe answered before the others went.
    const probe = afterwards[0]!;
    assert.ok(afterwards.slice(1).every((e) => e.at >= probe.endedAt!), 'the probe went alone');

    // Per copier, only the one that got the 429 waits.
    const control = await run(false);
    const c0 = control.find((e) => e.status === 429)!.at;
    assert.ok(control.filter((e) => e.at > c0 + 400 && e.at < c0 + 1_950).length > 10, 'per copier, the others kept calling');
  });

  it("a copier that dies holding a transfer slot frees it when its lease runs out", async () => {
    let now = 1_000_000;
    const limits = new DynamoDBSharedLimits(dynamo(), TABLE, () => now);
    const key = `dead-${Date.now()}`;
    assert.equal(await limits.acquireSlot(key, 1, 'dead', 60_000), 0);
    assert.equal(await limits.acquireSlot(key, 1, 'alive', 60_000), undefined, 'held');
    now += 59_000;
    assert.equal(await limits.renewSlot(key, 0, 'alive', 60_000), false, 'only the holder renews');
    assert.equal(await limits.acquireSlot(key, 1, 'alive', 60_000), undefined, 'still within the lease');
    now += 2_000;
    assert.equal(await limits.acquireSlot(key, 1, 'alive', 60_000), 0, 'taken over after the lease');
    assert.equal(await limits.renewSlot(key, 0, 'dead', 60_000), false, 'the dead holder cannot renew it back');
    await limits.releaseSlot(key, 0, 'dead');
    assert.equal(await limits.acquireSlot(key, 1, 'third', 60_000), undefined, "the dead holder's release does not free another's slot");
  });

  it('without Retry-After: exponential backoff with single probes; ratelimit-remaining: 0 throttles too', async () => {
    let armed: Promise<void> = Promise.resolve();
    const log = await busy(true, 6_000, () => {
      // Docker Hub's way: a good answer that says no pulls are left ...
      const from = proxy.log.length;
      proxy.add({ method: 'HEAD', path: /\/manifests\//, fault: { kind: 'add-headers', headers: { 'ratelimit-remaining': '0;w=21600' } } });
      // ... then, once every copier holds back, 429s without Retry-After for the next two requests (the probes).
      armed = (async () => {
        for (let n = 0; n < 100 && !proxy.log.slice(from).some((e) => e.fault === 'add-headers'); n++) await sleep(10);
        await sleep(500);
        proxy.add({ method: 'HEAD', path: /\/manifests\//, fault: { kind: 'status', status: 429 }, times: 2 });
      })();
    });
    await armed;
    assert.equal(rateLimitRemaining('0;w=21600'), 0);
    const t0 = log.find((e) => e.fault === 'add-headers')!.at;
    const probes = log.filter((e) => e.at > t0 + 400 && e.fault === 'status');
    const firstOk = log.find((e) => e.at > t0 + 400 && e.status === 200)!;
    // Level 1 (1 s) after the empty window, then each 429'd probe doubles it: 2 s, 4 s.
    assert.equal(probes.length, 2, JSON.stringify(log.map((e) => [e.at - t0, e.status])));
    assert.ok(probes[0]!.at - t0 >= 950, `first probe at +${probes[0]!.at - t0} ms`);
    assert.ok(probes[1]!.at - probes[0]!.at >= 1_900, `second probe ${probes[1]!.at - probes[0]!.at} ms later`);
    assert.ok(firstOk.at - probes[1]!.at >= 3_800, `first success ${firstOk.at - probes[1]!.at} ms after`);
    // Between the throttle and the first success only the probes reached the host.
    assert.deepEqual(log.filter((e) => e.at > t0 + 400 && e.at < firstOk.at && e.fault !== 'status').map((e) => e.at - t0), []);
  });
});
