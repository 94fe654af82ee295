// Listing a rule's source page by page: the registry protocol against a real docker-registry
// (_catalog with Link pagination, unsorted unpaginated tags/list), and Harbor's API v2.0 against
// a stand-in that answers with the swagger's shapes (test/support/harbor-fake.ts) over a real
// registry. Then the planner over both: filters, destination names, streaming.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../shared/registry/client.js';
import type { RegistryConfig, RuleConfig } from '../shared/rules/config-schema.js';
import { planRule, type PlanEvent } from '../shared/rules/plan.js';
import { HarborApi } from '../shared/sources/harbor-api.js';
import { HarborSource } from '../shared/sources/harbor-source.js';
import { RegistrySource } from '../shared/sources/registry-source.js';
import { startHarborFake, type HarborFake } from './support/harbor-fake.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

function rule(partial: Partial<RuleConfig>): RuleConfig {
  return {
    name: 'r',
    src_registry: 'src',
    dest_registry: 'dst',
    dest_namespace: '',
    dest_namespace_replace_count: -1,
    filters: [],
    trigger: { type: 'manual' },
    replicate_deletion: false,
    override: true,
    enabled: true,
    speed: -1,
    copy_by_chunk: false,
    single_active_replication: false,
    include_untagged: false,
    concurrency: 4,
    referrers: true,
    ...partial,
  };
}
const reg = (name: string, type: RegistryConfig['type'], url: string): RegistryConfig => ({ name, type, url, insecure: false, max_concurrency: 8, create_repositories: false });

describe('source listing and planning', () => {
  let registry: TestRegistry;
  let harbor: HarborFake;
  let one: Layout;
  let two: Layout;
  let client: RegistryClient;

  before(async () => {
    registry = await startRegistry();
    [one, two] = await Promise.all([imageLayout([{ size: 1000 }]), imageLayout([{ size: 2000 }])]);
    const tags = ['1.0', '1.1', '2.0-rc1', 'latest'];
    for (const t of tags) await pushLayout(t === 'latest' ? two : one, `${registry.host}/library/nginx:${t}`);
    await pushLayout(one, `${registry.host}/library/redis:7`);
    await pushLayout(one, `${registry.host}/team/a/b/app:1`);
    await pushLayout(two, `${registry.host}/other/tool:1`);
    client = new RegistryClient({ host: registry.host, scheme: 'http' });
    harbor = await startHarborFake(registry, { user: 'admin', password: 'Harbor12345', projects: ['library', 'team', 'other'] });
  });
  after(async () => {
    await Promise.all([harbor?.stop(), registry?.stop()]);
  });

  it('registry protocol: _catalog followed through its Link pages', async () => {
    const source = new RegistrySource(client, 2); // two per page: docker-registry answers Link
    const repos = await collect(source.repositories('**'));
    assert.deepEqual(repos, ['library/nginx', 'library/redis', 'other/tool', 'team/a/b/app']);
  });

  it('registry protocol: a pattern without wildcards names repositories without the catalog', async () => {
    const source = new RegistrySource(client);
    assert.deepEqual(await collect(source.repositories('library/{nginx,redis}')), ['library/nginx', 'library/redis']);
  });

  it('registry protocol: every tag of a repository, one artifact per tag', async () => {
    const tags = (await collect(new RegistrySource(client).artifacts('library/nginx'))).map((a) => a.tags[0]).sort();
    assert.deepEqual(tags, ['1.0', '1.1', '2.0-rc1', 'latest']);
    assert.deepEqual(await collect(new RegistrySource(client).artifacts('library/missing')), []);
  });

  it('planner over a registry: filters, digests, flattened destination names, reasons for what is left out', async () => {
    const events = await collect(
      planRule({
        rule: rule({
          dest_namespace: 'mirror',
          dest_namespace_replace_count: 1,
          filters: [
            { type: 'name', value: '{library,team}/**', decoration: 'matches' },
            { type: 'tag', value: '*-rc*', decoration: 'excludes' },
          ],
        }),
        source: reg('src', 'docker-registry', registry.url),
        sourceHost: registry.host,
        destination: reg('dst', 'docker-registry', 'http://127.0.0.1:1'),
        destinationHost: 'dst:5000',
        lister: new RegistrySource(client),
        sourceClient: client,
      }),
    );
    const lines = events.filter((e): e is Extract<PlanEvent, { kind: 'item' }> => e.kind === 'item').map((e) => `${e.item.source.repository}:${e.item.source.tags[0]} ${e.item.source.digest} -> ${e.item.destination.repository}:${e.item.destination.tags[0]}`);
    assert.deepEqual(lines.sort(), [
      `library/nginx:1.0 ${one.top.digest} -> mirror/nginx:1.0`,
      `library/nginx:1.1 ${one.top.digest} -> mirror/nginx:1.1`,
      `library/nginx:latest ${two.top.digest} -> mirror/nginx:latest`,
      `library/redis:7 ${one.top.digest} -> mirror/redis:7`,
      `team/a/b/app:1 ${one.top.digest} -> mirror/a/b/app:1`,
    ]);
    const excluded = events.filter((e) => e.kind === 'excluded').map((e) => (e.kind === 'excluded' ? `${e.what.split('/').slice(1).join('/')}: ${e.reason}` : ''));
    assert.deepEqual(excluded.sort(), [
      'library/nginx:2.0-rc1: tag 2.0-rc1 excluded by tag filter "*-rc*" (excludes)',
      'other/tool: repository does not match name filter "{library,team}/**"',
    ]);
  });

  it('planner: a name the destination cannot take is an error of that artifact, not a rename', async () => {
    const events = await collect(
      planRule({
        rule: rule({ filters: [{ type: 'name', value: 'team/**', decoration: 'matches' }], dest_namespace: 'hub', dest_namespace_replace_count: 0 }),
        source: reg('src', 'docker-registry', registry.url),
        sourceHost: registry.host,
        destination: { ...reg('dst', 'docker-hub', 'https://hub.docker.com'), type: 'docker-hub' },
        destinationHost: 'registry-1.docker.io',
        lister: new RegistrySource(client),
        sourceClient: client,
      }),
    );
    const relevant = events.filter((e) => e.kind !== 'excluded');
    assert.equal(relevant.length, 1);
    assert.equal(relevant[0]!.kind, 'error');
    assert.match(relevant[0]!.kind === 'error' ? relevant[0]!.error : '', /"hub\/team\/a\/b\/app" contains 5 path components, but the destination registry only supports 2/);
  });

  describe("Harbor's API", () => {
    const api = () => new HarborApi({ url: harbor.url, credentials: { username: 'admin', password: 'Harbor12345' } });

    it('lists projects and repositories page by page (page_size 100, X-Total-Count, Link)', async () => {
      for (let i = 0; i < 105; i++) harbor.projects.set(`p${String(i).padStart(3, '0')}`, { project_id: 1000 + i, public: false });
      try {
        const names = (await collect(api().projects())).map((p) => p.name);
        assert.equal(names.length, 108);
        const pages = harbor.requests.filter((r) => r.path.startsWith('/api/v2.0/projects?'));
        assert.ok(pages.some((r) => /page=2/.test(r.path)), 'second page requested through Link');
      } finally {
        for (let i = 0; i < 105; i++) harbor.projects.delete(`p${String(i).padStart(3, '0')}`);
      }
      assert.deepEqual((await collect(api().repositories('team'))).map((r) => r.name), ['team/a/b/app']);
    });

    it('sends credentials: an anonymous client sees no private project, as in Harbor', async () => {
      const anonymous = new HarborApi({ url: harbor.url });
      assert.deepEqual(await collect(anonymous.projects()), []);
    });

    it('lists artifacts with tags, labels, type and accessories; a nested repository name is encoded twice', async () => {
      harbor.labels.set(one.top.digest, ['prod']);
      try {
        const arts = await collect(new HarborSource(api()).artifacts('team/a/b/app'));
        assert.deepEqual(arts, [{ repository: 'team/a/b/app', digest: one.top.digest, tags: ['1'], labels: ['prod'], type: 'IMAGE', accessories: [] }]);
        const listing = harbor.requests.find((r) => r.path.startsWith('/api/v2.0/projects/team/repositories/a%252Fb%252Fapp/artifacts?'));
        assert.ok(listing, 'the repository name encoded twice');
        assert.match(listing.path, /with_accessory=true/, "accessories asked with the artifacts, as Harbor's own adapter does");
      } finally {
        harbor.labels.clear();
      }
    });

    it('planner over Harbor: one item per artifact with all its tags, labels filtered, untagged per include_untagged', async () => {
      harbor.labels.set(two.top.digest, ['prod']);
      harbor.untagged.push({ repository: 'library/redis', digest: two.top.digest });
      try {
        const plan = (r: Partial<RuleConfig>) =>
          collect(
            planRule({
              rule: rule(r),
              source: reg('src', 'harbor', harbor.url),
              sourceHost: harbor.host,
              destination: reg('dst', 'harbor', 'http://127.0.0.1:1'),
              destinationHost: 'dst:443',
              lister: new HarborSource(api()),
            }),
          );
        const items = (await plan({ filters: [{ type: 'name', value: 'library/*', decoration: 'matches' }] }))
          .filter((e) => e.kind === 'item')
          .map((e) => (e.kind === 'item' ? `${e.item.source.repository}@${e.item.source.digest === one.top.digest ? 'one' : 'two'} [${e.item.source.tags.join(',')}]` : ''));
        assert.deepEqual(items.sort(), ['library/nginx@one [1.0,1.1,2.0-rc1]', 'library/nginx@two [latest]', 'library/redis@one [7]']);

        const labelled = await plan({ filters: [{ type: 'label', value: ['prod'], decoration: 'matches' }], include_untagged: true });
        const kept = labelled.filter((e) => e.kind === 'item').map((e) => (e.kind === 'item' ? `${e.item.source.repository}[${e.item.source.tags.join(',')}]` : ''));
        assert.deepEqual(kept.sort(), ['library/nginx[latest]', 'library/redis[]', 'other/tool[1]']);
        const untaggedOff = await plan({ filters: [{ type: 'name', value: 'library/redis', decoration: 'matches' }] });
        assert.ok(untaggedOff.some((e) => e.kind === 'excluded' && e.reason === 'untagged (include_untagged is off)'));
      } finally {
        harbor.labels.clear();
        harbor.untagged.length = 0;
      }
    });

    it('creates a missing destination project, once (HEAD, then POST /projects)', async () => {
      assert.equal(await api().ensureProject('mirror'), 'created');
      assert.equal(harbor.projects.get('mirror')?.public, false);
      assert.equal(await api().ensureProject('mirror'), 'exists');
      const posts = harbor.requests.filter((r) => r.method === 'POST' && r.path === '/api/v2.0/projects');
      assert.equal(posts.length, 1);
      assert.ok(posts.every((r) => r.authenticated));
    });

    it('streams: the first artifact is planned before the listing reaches its last page', async () => {
      // 150 artifacts in one repository span two pages of 100 (untagged ones: Harbor lists them).
      for (let i = 0; i < 150; i++) harbor.untagged.push({ repository: 'other/tool', digest: `sha256:${i.toString(16).padStart(64, '0')}` });
      try {
        const before = harbor.requests.length;
        const events = planRule({
          rule: rule({ filters: [{ type: 'name', value: 'other/tool', decoration: 'matches' }], include_untagged: true }),
          source: reg('src', 'harbor', harbor.url),
          sourceHost: harbor.host,
          destination: reg('dst', 'docker-registry', 'http://127.0.0.1:1'),
          destinationHost: 'dst:5000',
          lister: new HarborSource(api()),
        });
        const it = events[Symbol.asyncIterator]();
        const first = await it.next();
        assert.equal(first.value?.kind, 'item');
        const pages = () => harbor.requests.slice(before).filter((r) => r.path.includes('/artifacts?')).length;
        assert.equal(pages(), 1, 'only the first page was fetched when the first item came out');
        let n = 1;
        while (!(await it.next()).done) n++;
        assert.equal(n, 151, 'the tagged artifact and 150 untagged ones');
        assert.equal(pages(), 2);
      } finally {
        harbor.untagged.length = 0;
      }
    });
  });
});
