// A destination's referrers tag schema index (`sha256-<hex>`) is shared: merged, never a foreign
// entry dropped, and updated one writer at a time per subject: in one process (an in-memory
// lock), and across Lambda copiers (a short lease in the DynamoDB table, on dynalite), against
// real docker-registry.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { DynamoDBLeases } from '../shared/adapters/aws/dynamodb-lease.js';
import { ensureTable } from '../shared/adapters/aws/dynamodb-store.js';
import { LeasedKeyedLock, MemoryKeyedLock, type KeyedLock } from '../shared/copy/keyed-lock.js';
import { addToReferrersIndex, removeFromReferrersIndex } from '../shared/copy/referrer-index.js';
import { RegistryClient } from '../shared/registry/client.js';
import type { ReferrerDescriptor } from '../shared/registry/referrers-api.js';
import { attach, getManifest, MT, pushBlob, pushImage, pushManifest, schemaTag, tagSchemaEntries, type Pushed, type Target } from './support/artifacts.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const TABLE = 'replicator-referrer-locks';
const FAST = { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 1000 };

describe('the destination referrers index, shared and serialized', () => {
  let reg: TestRegistry;
  let t: Target;
  let server: ReturnType<typeof dynalite>;
  let endpoint: string;

  before(async () => {
    server = dynalite({ createTableMs: 0 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = dynamo();
    await ensureTable(client, TABLE);
    client.destroy();
    reg = await startRegistry();
    t = { url: reg.url };
  });
  after(async () => {
    await reg?.stop();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const dynamo = () => new DynamoDBClient({ endpoint, region: 'local', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const client = () => new RegistryClient({ host: reg.host, scheme: 'http', retry: FAST });
  /** `n` referrers of `subject` pushed by digest (not listed anywhere yet), as descriptors. */
  const referrers = async (repo: string, subject: Pushed, n: number): Promise<ReferrerDescriptor[]> => {
    const out: ReferrerDescriptor[] = [];
    for (let i = 0; i < n; i++) {
      const body = { schemaVersion: 2, mediaType: MT.OCI_MANIFEST, artifactType: MT.NOTATION, config: { mediaType: MT.OCI_EMPTY, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }, layers: [], subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }, annotations: { n: `${repo}-${i}-${Math.random()}` } };
      const p = await pushManifest(t, repo, body);
      out.push({ mediaType: MT.OCI_MANIFEST, digest: p.digest, size: p.size, artifactType: MT.NOTATION });
    }
    return out;
  };
  /** Pushes the empty config blob a referrer of `referrers` names. */
  const emptyConfig = async (repo: string) => {
    await pushBlob(t, repo, '{}', MT.OCI_EMPTY);
  };

  it('in one process: eight concurrent copies of one subject each add their own entry; all eight listed, the foreign one kept', async () => {
    const repo = 'one/app';
    await emptyConfig(repo);
    const subject = await pushImage(t, repo, 'v1');
    const foreign = await attach(t, repo, subject, 'custom');
    const mine = await referrers(repo, subject, 8);
    const lock = new MemoryKeyedLock();
    const c = client();
    const added = await Promise.all(mine.map((e) => addToReferrersIndex(c, repo, subject.digest, [e], { lock })));
    assert.deepEqual(added.flat().sort(), mine.map((e) => e.digest).sort());
    const listed = (await tagSchemaEntries(t, repo, subject.digest)).map((e) => e.digest).sort();
    assert.deepEqual(listed, [foreign.digest, ...mine.map((e) => e.digest)].sort());
  });

  it('across four copiers (each its own clients and table connection): a lease in the table per subject; nothing lost, no lease left', async () => {
    const repo = 'many/app';
    await emptyConfig(repo);
    const subject = await pushImage(t, repo, 'v1');
    const foreign = await attach(t, repo, subject, 'sbom');
    const copiers = Array.from({ length: 4 }, () => ({ lock: new LeasedKeyedLock(new DynamoDBLeases(dynamo(), TABLE), { leaseMs: 5_000 }) as KeyedLock, client: client() }));
    const mine = await referrers(repo, subject, 12);
    await Promise.all(mine.map((e, i) => addToReferrersIndex(copiers[i % 4]!.client, repo, subject.digest, [e], { lock: copiers[i % 4]!.lock })));
    const listed = (await tagSchemaEntries(t, repo, subject.digest)).map((e) => e.digest).sort();
    assert.deepEqual(listed, [foreign.digest, ...mine.map((e) => e.digest)].sort(), 'every entry of every copier, and the foreign one');
    const scan = await dynamo().send(new ScanCommand({ TableName: TABLE }));
    assert.deepEqual((scan.Items ?? []).filter((i) => i.PK?.S?.startsWith('LOCK#')), [], 'every lease given back');
  });

  it("a copier that died holding the lease: the next one waits for the lease to run out, then goes on", async () => {
    const repo = 'dead/app';
    await emptyConfig(repo);
    const subject = await pushImage(t, repo, 'v1');
    const [e] = await referrers(repo, subject, 1);
    // The dead copier's lease, never renewed nor released.
    const key = `${reg.host}/${repo}@${subject.digest}`;
    assert.equal(await new DynamoDBLeases(dynamo(), TABLE).acquire(key, 'dead-copier', 600), true);
    const started = Date.now();
    await addToReferrersIndex(client(), repo, subject.digest, [e!], { lock: new LeasedKeyedLock(new DynamoDBLeases(dynamo(), TABLE), { leaseMs: 5_000 }) });
    assert.ok(Date.now() - started >= 500, 'waited for the lease');
    assert.deepEqual((await tagSchemaEntries(t, repo, subject.digest)).map((x) => x.digest), [e!.digest]);
  });

  it('removing entries keeps every other one; an index left empty is deleted with its tag; a tag that is no index is left alone', async () => {
    const repo = 'rm/app';
    await emptyConfig(repo);
    const subject = await pushImage(t, repo, 'v1');
    const foreign = await attach(t, repo, subject, 'notation');
    const mine = await referrers(repo, subject, 2);
    const lock = new MemoryKeyedLock();
    const c = client();
    await addToReferrersIndex(c, repo, subject.digest, mine, { lock });
    assert.deepEqual((await removeFromReferrersIndex(c, repo, subject.digest, mine.map((m) => m.digest), { lock })).sort(), mine.map((m) => m.digest).sort());
    assert.deepEqual((await tagSchemaEntries(t, repo, subject.digest)).map((x) => x.digest), [foreign.digest], 'the foreign entry stays');
    await removeFromReferrersIndex(c, repo, subject.digest, [foreign.digest], { lock });
    assert.equal(await getManifest(t, repo, schemaTag(subject.digest)), undefined, 'an empty index goes');

    // Someone else's image under the subject's tag: not the tag schema; never overwritten.
    const other = await pushImage(t, repo, schemaTag(subject.digest));
    await assert.rejects(addToReferrersIndex(c, repo, subject.digest, mine, { lock }), (err: { code?: string }) => err.code === 'REFERRERS_INDEX_INVALID');
    assert.deepEqual(await getManifest(t, repo, schemaTag(subject.digest)), other.bytes);
  });
});
