// Self-hosted registry types, each against a stand-in shaped like the product (its token service,
// the scopes it grants or refuses, its REST API for listing and namespaces) in front of a real
// docker-registry, and each through a real `harbor-replicator run`: quay (robot `org+robot`, the
// catalog token without scope, organizations through the API, Harbor's JSON credential), gitlab
// (project paths through GitLab's API at the realm's host, a deploy token `gitlab+deploy-token-N`),
// jfrog-artifactory (repository keys, per-key catalogs, keys created, blobs as one PATCH), dtr
// (API pages, namespaces and repositories created), harbor (robot `robot$replicator`).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/cli.js';
import { type Layout } from './support/fixtures.js';
import { startHarborFake } from './support/harbor-fake.js';
import { manifestDigest } from './support/inspect.js';
import { basicUser, catalogOf, json, pageOf, startApiFake, startProviderFake, tagsOf, type ApiFake, type ProviderFake } from './support/provider-fake.js';
import { type TestRegistry } from './support/registry.js';
import { configRunner, startTypeRegistries } from './support/type-registries.js';

describe('registry types: quay, gitlab, jfrog-artifactory, dtr, harbor robots', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let app: Layout;
  let tool: Layout;
  let dir: string;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    ({ src, dst, app, tool, dir } = await startTypeRegistries('hr-types-self-', ['acme/app:1', 'group/sub/project:1', 'group/sub/project:2', 'docker-local/app:1', 'eng/api:1', 'eng/api:2'], ['acme/tool:1', 'group/sub/project/worker:1', 'group/other/x:1', 'docker-local/team/tool:1', 'eng/web:1', 'team/tool:1']));
  });
  after(async () => {
    await Promise.all([...stops.map((s) => s()), src?.stop(), dst?.stop()]);
  });

  const run = configRunner(() => dir);

  describe('quay', () => {
    let quay: ProviderFake;
    const orgs = new Set(['acme']);

    before(async () => {
      quay = await startProviderFake({
        upstream: src,
        users: new Map([['acme+replicator', 'R0B0T-T0KEN-QUAY']]),
        realmPath: '/v2/auth',
        service: 'quay.example.com',
        // Quay's token service refuses the catalog scope (goharbor/harbor#13200); its catalog needs none.
        refuseToken: (scopes) => (scopes.some((s) => s.startsWith('registry:catalog')) ? { status: 400, body: { error: 'Unable to decode repository and actions' } } : undefined),
        catalogWithoutScope: true,
        api: (req, res, url, seen) => {
          if (!url.pathname.startsWith('/api/v1/')) return false;
          if (req.headers.authorization !== 'Bearer quay-oauth2-app-token') return json(res, 401, { error_message: 'Requires authentication', error_type: 'invalid_token' });
          const m = /^\/api\/v1\/organization\/([^/]*)$/.exec(url.pathname);
          if (m && req.method === 'GET') return orgs.has(m[1]!) ? json(res, 200, { name: m[1] }) : json(res, 404, { error_message: 'Not Found', error_type: 'not_found' });
          if (url.pathname === '/api/v1/organization/' && req.method === 'POST') {
            const body = JSON.parse(seen.body) as { name: string; email: string };
            orgs.add(body.name);
            return json(res, 201, 'Created');
          }
          return false;
        },
      });
      stops.push(quay.stop);
    });

    const config = (credential: string, extra = '', org = 'neworg') => `registries:
  - name: quay
    type: quay
    url: ${quay.url}
    credential: ${credential}
    create_repositories: true
${extra}  - name: hq
    type: docker-registry
    url: ${src.url}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-quay
    src_registry: quay
    dest_registry: branch
    dest_namespace: quay
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "acme/*"}]
  - name: to-quay
    src_registry: hq
    dest_registry: quay
    dest_namespace: ${org}
    filters: [{type: name, value: team/tool}]
`;

    it('a robot org+robot lists the catalog with a scope-less token (Quay refuses the catalog scope) and copies', async () => {
      const r = await run(config('{username: "acme+replicator", password: {env: QUAY_ROBOT}}'), ['run', 'from-quay'], { QUAY_ROBOT: 'R0B0T-T0KEN-QUAY' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'quay/app', '1'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'quay/tool', '1'), tool.top.digest);
      assert.ok(quay.tokenRequests.length > 0 && quay.tokenRequests.every((t) => t.user === 'acme+replicator' && t.granted));
      assert.ok(!quay.tokenRequests.some((t) => t.scopes.some((s) => s.startsWith('registry:catalog'))), 'no catalog scope asked');
    });

    it("create_repositories makes the missing organization through Quay's API with the OAuth2 token (api_token), then pushes", async () => {
      const r = await run(config('{username: "acme+replicator", password: {env: QUAY_ROBOT}}', '    api_token: {env: QUAY_OAUTH}\n'), ['run', 'to-quay'], {
        QUAY_ROBOT: 'R0B0T-T0KEN-QUAY',
        QUAY_OAUTH: 'quay-oauth2-app-token',
      });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const post = quay.requests.find((q) => q.method === 'POST' && q.path === '/api/v1/organization/');
      assert.deepEqual(JSON.parse(post!.body), { name: 'neworg', email: 'neworg@quay.io' });
      assert.equal(await manifestDigest(src.url, 'neworg/tool', '1'), tool.top.digest);
      // The OAuth token went to the API only; the robot's Basic to the token service only.
      assert.ok(quay.requests.filter((q) => q.authorization?.includes('quay-oauth2')).every((q) => q.path.startsWith('/api/v1/')));
      assert.ok(quay.requests.filter((q) => q.authorization?.startsWith('Basic ')).every((q) => q.path.startsWith('/v2/auth')));
    });

    it("Harbor's JSON credential ({account_name, docker_cli_password, oauth2_token} as the secret) works as Harbor's does", async () => {
      const secret = JSON.stringify({ account_name: 'acme+replicator', docker_cli_password: 'R0B0T-T0KEN-QUAY', oauth2_token: 'quay-oauth2-app-token' });
      const r = await run(config('{username: json_file, password: {env: QUAY_JSON}}', '', 'jsonorg'), ['run', 'to-quay'], { QUAY_JSON: secret });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(orgs.has('jsonorg'));
      assert.equal(await manifestDigest(src.url, 'jsonorg/tool', '1'), tool.top.digest);
    });

    it('config check resolves api_token like every secret, and says which one is missing', async () => {
      const file = join(dir, 'quay-check.yaml');
      await writeFile(file, config('{username: "acme+replicator", password: {env: QUAY_ROBOT}}', '    api_token: {env: QUAY_OAUTH_UNSET}\n'));
      const r = await runCli(['config', 'check', '--config', file], { env: { QUAY_ROBOT: 'x' } });
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stderr, /registries\[0\]\.api_token: environment variable QUAY_OAUTH_UNSET is not set/);
    });

    it('create_repositories without an OAuth2 token says what is missing', async () => {
      const r = await run(config('{username: "acme+replicator", password: {env: QUAY_ROBOT}}', '', 'tokenless'), ['run', 'to-quay'], { QUAY_ROBOT: 'R0B0T-T0KEN-QUAY' });
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /create_repositories needs Quay's OAuth2 application token to create organizations: set api_token/);
    });
  });

  describe('gitlab', () => {
    let registry: ProviderFake;
    let gitlab: ApiFake;
    const projects = [
      { id: 11, path_with_namespace: 'group/sub/project', container_registry_enabled: true },
      { id: 12, path_with_namespace: 'group/sub/disabled', container_registry_enabled: false },
      { id: 13, path_with_namespace: 'group/other', container_registry_enabled: true },
    ];

    before(async () => {
      registry = await startProviderFake({
        upstream: src,
        users: new Map([
          ['gitlab-ci', 'glpat-Abc123xyz'],
          ['gitlab+deploy-token-7', 'gldt-Def456uvw'],
        ]),
        realmPath: '/jwt/auth',
        service: 'container_registry',
        realmOrigin: () => gitlab.url,
      });
      gitlab = await startApiFake(async (req, res, url) => {
        // GitLab's host serves the registry's token realm and the API.
        if (url.pathname === '/jwt/auth') {
          registry.issueToken(req, res, url);
          return true;
        }
        if (!url.pathname.startsWith('/api/v4/')) return false;
        if (req.headers['private-token'] !== 'glpat-Abc123xyz') return json(res, 401, { message: '401 Unauthorized' });
        const page = Number(url.searchParams.get('page') ?? 1);
        const paged = (items: unknown[]) => {
          const slice = pageOf(items, page, 1);
          return json(res, 200, slice.items, slice.more ? { 'x-next-page': String(page + 1) } : { 'x-next-page': '' });
        };
        if (url.pathname === '/api/v4/projects') {
          const search = url.searchParams.get('search');
          return paged(projects.filter((p) => !search || p.path_with_namespace.startsWith(search)));
        }
        let m = /^\/api\/v4\/projects\/(\d+)\/registry\/repositories$/.exec(url.pathname);
        if (m) {
          const project = projects.find((p) => p.id === Number(m![1]))!;
          const repos = (await catalogOf(src)).filter((r) => r === project.path_with_namespace || r.startsWith(`${project.path_with_namespace}/`));
          return paged(repos.map((path, i) => ({ id: project.id * 10 + i, name: path.slice(project.path_with_namespace.length + 1), path, location: `registry.example.com/${path}` })));
        }
        m = /^\/api\/v4\/projects\/(\d+)\/registry\/repositories\/(\d+)\/tags$/.exec(url.pathname);
        if (m) {
          const project = projects.find((p) => p.id === Number(m![1]))!;
          const repos = (await catalogOf(src)).filter((r) => r === project.path_with_namespace || r.startsWith(`${project.path_with_namespace}/`));
          const path = repos[Number(m[2]) - project.id * 10]!;
          return paged((await tagsOf(src, path)).map((name) => ({ name, path: `${path}:${name}` })));
        }
        return false;
      });
      stops.push(registry.stop, gitlab.stop);
    });

    const config = (user: string, filter: string) => `registries:
  - name: gitlab
    type: gitlab
    url: ${registry.url}
    credential: {username: "${user}", password: {env: GITLAB_TOKEN}}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-gitlab
    src_registry: gitlab
    dest_registry: branch
    dest_namespace: gl
    dest_namespace_replace_count: 2
    filters: [{type: name, value: "${filter}"}]
`;

    it("lists project paths through GitLab's API at the token realm's host (PRIVATE-TOKEN, X-Next-Page) and copies", async () => {
      const r = await run(config('gitlab-ci', 'group/sub/**'), ['run', 'from-gitlab'], { GITLAB_TOKEN: 'glpat-Abc123xyz' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'gl/project', '2'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'gl/project/worker', '1'), tool.top.digest);
      const api = gitlab.requests.filter((q) => q.path.startsWith('/api/v4/'));
      assert.ok(api.some((q) => q.path.startsWith('/api/v4/projects?') && new URL(q.path, 'http://x').searchParams.get('search') === 'group/sub'), 'projects searched by the leading components');
      assert.ok(!api.some((q) => q.path.includes('/projects/12/')), 'a project whose registry is disabled is skipped');
      assert.ok(api.some((q) => /\/tags\?.*page=2/.test(q.path)), 'tags followed X-Next-Page');
      assert.ok(api.every((q) => q.authorization === undefined), 'the token only as PRIVATE-TOKEN, never as Authorization');
      assert.ok(registry.requests.every((q) => q.headers['private-token'] === undefined), 'the API token never at the registry');
    });

    it('a deploy token (gitlab+deploy-token-N) pulls named repositories; listing with one says why it cannot', async () => {
      const named = await run(config('gitlab+deploy-token-7', 'group/other/x'), ['run', 'from-gitlab'], { GITLAB_TOKEN: 'gldt-Def456uvw' });
      assert.equal(named.code, 0, named.stderr + named.stdout);
      assert.equal(await manifestDigest(dst.url, 'gl/x', '1'), tool.top.digest);
      assert.ok(registry.tokenRequests.some((t) => t.user === 'gitlab+deploy-token-7' && t.granted));
      const listed = await run(config('gitlab+deploy-token-7', 'group/**'), ['run', 'from-gitlab', '--dry-run'], { GITLAB_TOKEN: 'gldt-Def456uvw' });
      assert.notEqual(listed.code, 0);
      assert.match(listed.stderr, /GitLab's API refuses deploy tokens, so repositories cannot be listed with one: name them exactly/);
    });
  });

  describe('jfrog-artifactory', () => {
    let jfrog: ProviderFake;
    const keys = [
      { key: 'docker-local', type: 'LOCAL', packageType: 'Docker', url: '' },
      { key: 'generic-local', type: 'LOCAL', packageType: 'Generic', url: '' },
    ];

    before(async () => {
      jfrog = await startProviderFake({
        upstream: src,
        users: new Map([['jf-user', 'cmVmdGtuOjAxOjE3-access-token']]),
        realmPath: '/artifactory/api/docker/docker-local/v2/token',
        api: async (req, res, url, seen) => {
          if (!url.pathname.startsWith('/artifactory/api/')) return false;
          const b = basicUser(req.headers.authorization);
          if (!b || b.user !== 'jf-user' || b.password !== 'cmVmdGtuOjAxOjE3-access-token') return json(res, 401, { errors: [{ status: 401, message: 'Bad credentials' }] });
          if (url.pathname === '/artifactory/api/repositories' && req.method === 'GET') return json(res, 200, keys);
          const created = /^\/artifactory\/api\/repositories\/([^/]+)$/.exec(url.pathname);
          if (created && req.method === 'PUT') {
            const body = JSON.parse(seen.body) as { key: string; packageType: string };
            keys.push({ key: body.key, type: 'LOCAL', packageType: body.packageType, url: '' });
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end(`Successfully created repository '${body.key}'`);
            return true;
          }
          const catalog = /^\/artifactory\/api\/docker\/([^/]+)\/v2\/_catalog$/.exec(url.pathname);
          if (catalog) {
            const key = catalog[1]!;
            const all = (await catalogOf(src)).filter((r) => r.startsWith(`${key}/`)).map((r) => r.slice(key.length + 1));
            const last = url.searchParams.get('last');
            const from = last ? all.indexOf(last) + 1 : 0;
            const page = all.slice(from, from + 1);
            const more = from + 1 < all.length;
            return json(res, 200, { repositories: page }, more ? { link: `</artifactory/api/docker/${key}/v2/_catalog?n=1&last=${page[0]}>; rel="next"` } : {});
          }
          return false;
        },
      });
      stops.push(jfrog.stop);
    });

    const config = () => `registries:
  - name: jfrog
    type: jfrog-artifactory
    url: ${jfrog.url}
    credential: {username: jf-user, password: {env: JFROG_TOKEN}}
    create_repositories: true
  - name: hq
    type: docker-registry
    url: ${src.url}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-jfrog
    src_registry: jfrog
    dest_registry: branch
    dest_namespace: jf
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "docker-local/**"}]
  - name: to-jfrog
    src_registry: hq
    dest_registry: jfrog
    dest_namespace: images-local
    filters: [{type: name, value: eng/web}]
`;

    it('lists repository keys, then each Docker key’s catalog (Link pages), names prefixed with the key, and copies', async () => {
      const r = await run(config(), ['run', 'from-jfrog'], { JFROG_TOKEN: 'cmVmdGtuOjAxOjE3-access-token' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'jf/app', '1'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'jf/team/tool', '1'), tool.top.digest);
      assert.ok(!jfrog.requests.some((q) => q.path.includes('/generic-local/')), 'a Generic key has no catalog to ask');
      assert.ok(jfrog.requests.some((q) => q.path.includes('_catalog?n=1&last=')), 'followed the catalog Link');
    });

    it('as a destination, creates the missing repository key, and pushes every blob as one PATCH then a PUT without body', async () => {
      const r = await run(config(), ['run', 'to-jfrog'], { JFROG_TOKEN: 'cmVmdGtuOjAxOjE3-access-token' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const put = jfrog.requests.find((q) => q.method === 'PUT' && q.path === '/artifactory/api/repositories/images-local');
      assert.deepEqual(JSON.parse(put!.body), { key: 'images-local', rclass: 'local', packageType: 'docker', repoLayoutRef: 'simple-default' });
      assert.equal(await manifestDigest(src.url, 'images-local/web', '1'), tool.top.digest);
      const uploads = jfrog.forwarded.filter((f) => f.path.includes('/images-local/web/blobs/uploads/'));
      const patches = uploads.filter((f) => f.method === 'PATCH');
      const puts = uploads.filter((f) => f.method === 'PUT');
      assert.ok(patches.length > 0 && patches.length === puts.length, 'one PATCH and one PUT per blob');
      assert.ok(puts.every((f) => f.length === '0'), 'the PUT carries no body');
    });
  });

  describe('dtr', () => {
    let dtr: ProviderFake;
    const accounts = new Set(['eng']);
    const made = new Set<string>();

    before(async () => {
      dtr = await startProviderFake({
        upstream: src,
        users: new Map([['dtr-admin', 'dtr-access-token-1']]),
        realmPath: '/auth/token',
        api: async (req, res, url, seen) => {
          if (!url.pathname.startsWith('/api/v0/') && !url.pathname.startsWith('/enzi/v0/')) return false;
          const b = basicUser(req.headers.authorization);
          if (!b || b.user !== 'dtr-admin' || b.password !== 'dtr-access-token-1') return json(res, 401, { errors: [{ code: 'NOT_AUTHENTICATED', message: 'client is not authenticated' }] });
          const repos = (await catalogOf(src)).filter((r) => r.split('/').length === 2).map((r) => ({ namespace: r.split('/')[0]!, name: r.split('/')[1]!, id: r }));
          if (url.pathname === '/api/v0/repositories' && req.method === 'GET') {
            const start = url.searchParams.get('pageStart');
            const from = start ? repos.findIndex((r) => r.id === start) : 0;
            const next = repos[from + 1];
            return json(res, 200, { repositories: repos.slice(from, from + 1) }, next ? { 'x-next-page-start': next.id } : {});
          }
          let m = /^\/api\/v0\/repositories\/([^/]+)\/([^/]+)\/tags$/.exec(url.pathname);
          if (m) return json(res, 200, (await tagsOf(src, `${m[1]}/${m[2]}`)).map((name) => ({ name, digest: 'sha256:x' })));
          m = /^\/enzi\/v0\/accounts\/([^/]+)$/.exec(url.pathname);
          if (m && req.method === 'GET') return accounts.has(m[1]!) ? json(res, 200, { name: m[1], isOrg: true }) : json(res, 404, { errors: [{ code: 'NO_SUCH_ACCOUNT', message: 'account does not exist' }] });
          if (url.pathname === '/enzi/v0/accounts' && req.method === 'POST') {
            accounts.add((JSON.parse(seen.body) as { name: string }).name);
            return json(res, 201, JSON.parse(seen.body));
          }
          m = /^\/api\/v0\/repositories\/([^/]+)\/([^/]+)$/.exec(url.pathname);
          if (m && req.method === 'GET') return made.has(`${m[1]}/${m[2]}`) ? json(res, 200, { name: m[2] }) : json(res, 404, { errors: [{ code: 'NO_SUCH_REPOSITORY', message: 'repository does not exist' }] });
          m = /^\/api\/v0\/repositories\/([^/]+)$/.exec(url.pathname);
          if (m && req.method === 'POST') {
            made.add(`${m[1]}/${(JSON.parse(seen.body) as { name: string }).name}`);
            return json(res, 201, JSON.parse(seen.body));
          }
          return false;
        },
      });
      stops.push(dtr.stop);
    });

    const config = () => `registries:
  - name: dtr
    type: dtr
    url: ${dtr.url}
    credential: {username: dtr-admin, password: {env: DTR_TOKEN}}
    create_repositories: true
  - name: hq
    type: docker-registry
    url: ${src.url}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-dtr
    src_registry: dtr
    dest_registry: branch
    dest_namespace: dtr
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "eng/*"}]
  - name: to-dtr
    src_registry: hq
    dest_registry: dtr
    dest_namespace: ops
    filters: [{type: name, value: team/tool}]
  - name: to-dtr-deep
    src_registry: hq
    dest_registry: dtr
    dest_namespace: ops
    dest_namespace_replace_count: 0
    filters: [{type: name, value: team/tool}]
`;

    it("lists through DTR's API (X-Next-Page-Start pages, tags) and copies", async () => {
      const r = await run(config(), ['run', 'from-dtr'], { DTR_TOKEN: 'dtr-access-token-1' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'dtr/api', '2'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'dtr/web', '1'), tool.top.digest);
      assert.ok(dtr.requests.some((q) => q.path.includes('pageStart=')), 'followed X-Next-Page-Start');
    });

    it('as a destination, creates the namespace (an organization) and the private repository before the push', async () => {
      const r = await run(config(), ['run', 'to-dtr'], { DTR_TOKEN: 'dtr-access-token-1' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const account = dtr.requests.find((q) => q.method === 'POST' && q.path === '/enzi/v0/accounts');
      assert.deepEqual(JSON.parse(account!.body), { name: 'ops', fullName: 'ops', isOrg: true });
      const repo = dtr.requests.find((q) => q.method === 'POST' && q.path === '/api/v0/repositories/ops');
      assert.equal((JSON.parse(repo!.body) as { visibility: string }).visibility, 'private');
      assert.equal(await manifestDigest(src.url, 'ops/tool', '1'), tool.top.digest);
    });

    it('a destination name of three components is an error of its artifact: DTR repositories are namespace/name', async () => {
      const r = await run(config(), ['run', 'to-dtr-deep', '--dry-run'], { DTR_TOKEN: 'dtr-access-token-1' });
      assert.match(r.stdout + r.stderr, /"ops\/team\/tool" contains 3 path components, but the destination registry only supports 2/);
    });
  });

  describe("harbor with a robot account (robot$name)", () => {
    it('a robot$ user creates the project through the API and pushes with a token from the realm', async () => {
      const registry = await startProviderFake({ upstream: dst, users: new Map([['robot$replicator', 'Rb0tS3cret']]), service: 'harbor-registry' });
      const harbor = await startHarborFake(registry as unknown as TestRegistry, { user: 'robot$replicator', password: 'Rb0tS3cret', projects: [] });
      stops.push(registry.stop, harbor.stop);
      const config = `registries:
  - name: hq
    type: docker-registry
    url: ${src.url}
  - name: dr
    type: harbor
    url: ${harbor.url}
    credential: {username: "robot$replicator", password: {env: HARBOR_ROBOT}}
rules:
  - name: to-harbor
    src_registry: hq
    dest_registry: dr
    dest_namespace: robots
    filters: [{type: name, value: acme/app}]
`;
      const r = await run(config, ['run', 'to-harbor'], { HARBOR_ROBOT: 'Rb0tS3cret' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(harbor.projects.has('robots'));
      assert.ok(harbor.requests.some((q) => q.method === 'POST' && q.authenticated));
      assert.ok(registry.tokenRequests.length > 0 && registry.tokenRequests.every((t) => t.user === 'robot$replicator' && t.granted));
      assert.equal(await manifestDigest(dst.url, 'robots/app', '1'), app.top.digest);
    });
  });
});
