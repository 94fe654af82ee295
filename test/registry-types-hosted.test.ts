// Hosted registry types, each against a stand-in shaped like the provider (its token service, the
// scopes its registry checks, its own API) in front of a real docker-registry, and each through a
// real `harbor-replicator run` of a rule: docker-hub (Hub's API for listing and organizations,
// the login token, ratelimit-remaining), github-ghcr (the packages API, the PAT), google-gcr and
// artifact-registry (`_json_key`, `oauth2accesstoken`), azure-acr (a service principal, tag
// listing with metadata_read).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Layout } from './support/fixtures.js';
import { manifestDigest } from './support/inspect.js';
import { catalogOf, json, pageOf, startApiFake, startProviderFake, tagsOf, type ApiFake, type ProviderFake } from './support/provider-fake.js';
import { type TestRegistry } from './support/registry.js';
import { configRunner, startTypeRegistries } from './support/type-registries.js';

describe('registry types: docker-hub, github-ghcr, google-gcr, artifact-registry, azure-acr', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let app: Layout;
  let tool: Layout;
  let dir: string;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    ({ src, dst, app, tool, dir } = await startTypeRegistries('hr-types-hosted-', ['team/app:1.0', 'team/app:2.0', 'octo/app:1', 'octo/tools/cli:1'], ['team/tool:1', 'other/x:1']));
  });
  after(async () => {
    await Promise.all([...stops.map((s) => s()), src?.stop(), dst?.stop()]);
  });

  const run = configRunner(() => dir);

  describe('docker-hub', () => {
    let registry: ProviderFake;
    let hub: ApiFake;
    const orgs = new Set(['team']);
    let remaining = 3;

    before(async () => {
      registry = await startProviderFake({
        upstream: src,
        users: new Map([['hubuser', 'dckr_pat_secret']]),
        // registry-1.docker.io states the pull budget on manifest answers.
        responseHeaders: (method, path): Record<string, string> =>
          /\/manifests\//.test(path) && (method === 'GET' || method === 'HEAD')
            ? { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': `${(remaining = Math.max(0, remaining - 1))};w=21600` }
            : {},
      });
      const token = 'hub-jwt-7f3a';
      hub = await startApiFake(async (req, res, url, seen) => {
        const p = url.pathname;
        if (req.method === 'POST' && p === '/v2/auth/token') {
          const body = JSON.parse(seen.body) as { identifier?: string; secret?: string };
          if (body.identifier !== 'hubuser' || body.secret !== 'dckr_pat_secret') return json(res, 401, { message: 'Incorrect authentication credentials' });
          return json(res, 200, { access_token: token });
        }
        if (req.headers.authorization !== `Bearer ${token}`) return json(res, 401, { detail: 'authentication required' });
        if (p === '/v2/repositories/namespaces') return json(res, 200, { namespaces: ['team', 'other'] });
        let m = /^\/v2\/repositories\/([^/]+)\/$/.exec(p);
        if (m) {
          const ns = m[1]!;
          const repos = (await catalogOf(src)).filter((r) => r.split('/').length === 2 && r.startsWith(`${ns}/`)).map((r) => ({ name: r.split('/')[1]!, namespace: ns, repository_type: 'image' }));
          // One per page: Harbor's loop must follow `next`.
          const page = Number(url.searchParams.get('page') ?? 1);
          const slice = pageOf(repos, page, 1);
          return json(res, 200, { count: repos.length, next: slice.more ? `https://hub.docker.com${p}?page=${page + 1}&page_size=100` : null, previous: null, results: slice.items });
        }
        m = /^\/v2\/repositories\/([^/]+)\/([^/]+)\/tags\/$/.exec(p);
        if (m) {
          const tags = (await tagsOf(src, `${m[1]}/${m[2]}`)).map((name) => ({ name, full_size: 1 }));
          const page = Number(url.searchParams.get('page') ?? 1);
          const slice = pageOf(tags, page, 1);
          return json(res, 200, { count: tags.length, next: slice.more ? 'more' : null, previous: null, results: slice.items });
        }
        m = /^\/v2\/orgs\/([^/]+)\/$/.exec(p);
        if (m && req.method === 'GET') return orgs.has(m[1]!) ? json(res, 200, { orgname: m[1] }) : json(res, 404, { detail: 'Not found' });
        if (req.method === 'POST' && p === '/v2/orgs/') {
          const body = JSON.parse(seen.body) as { orgname: string };
          orgs.add(body.orgname);
          return json(res, 201, { orgname: body.orgname });
        }
        return false;
      });
      stops.push(registry.stop, hub.stop);
    });

    const config = () => `registries:
  - name: hub
    type: docker-hub
    url: ${registry.url}
    api_url: ${hub.url}
    credential: {username: hubuser, password: {env: HUB_TOKEN}}
    create_repositories: true
  - name: branch
    type: docker-registry
    url: ${dst.url}
  - name: hq
    type: docker-registry
    url: ${src.url}
rules:
  - name: from-hub
    src_registry: hub
    dest_registry: branch
    dest_namespace: hub
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "team/**"}]
  - name: to-hub
    src_registry: hq
    dest_registry: hub
    dest_namespace: neworg
    filters: [{type: name, value: other/x}]
`;

    it("lists through Hub's API (login token, namespaces, repository and tag pages) and copies; the rate-limit headers are surfaced", async () => {
      const r = await run(config(), ['run', 'from-hub'], { HUB_TOKEN: 'dckr_pat_secret' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      for (const [repo, tag, layout] of [['hub/app', '1.0', app], ['hub/app', '2.0', app], ['hub/tool', '1', tool]] as const) {
        assert.equal(await manifestDigest(dst.url, repo, tag), layout.top.digest, `${repo}:${tag}`);
      }
      const paths = hub.requests.map((q) => `${q.method} ${q.path.split('?')[0]}`);
      assert.ok(paths.includes('POST /v2/auth/token'));
      assert.ok(paths.includes('GET /v2/repositories/team/'), 'the namespace the filter names, without listing every namespace');
      assert.ok(!paths.includes('GET /v2/repositories/namespaces'));
      assert.ok(hub.requests.some((q) => q.path.includes('/v2/repositories/team/?page=2')), "followed the repositories' next page");
      assert.ok(hub.requests.some((q) => q.path.includes('/v2/repositories/team/app/tags/?page=2')), "followed the tags' next page");
      // Each credential stays with its origin: Hub's API token never at the registry, the registry's Basic never at the API.
      assert.ok(hub.requests.every((q) => !q.authorization?.startsWith('Basic ')));
      assert.ok(registry.requests.every((q) => !q.authorization?.includes('hub-jwt')));
      assert.ok(registry.tokenRequests.every((t) => t.user === 'hubuser' && t.granted));
      assert.match(r.stderr, /warning: 127\.0\.0\.1:\d+: rate limit reached \[ratelimit-remaining 0 of 100\]/);
    });

    it('with --debug each registry answer shows its ratelimit-remaining', async () => {
      remaining = 50;
      const r = await run(config(), ['run', 'from-hub', '--dry-run', '--debug'], { HUB_TOKEN: 'dckr_pat_secret' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /debug: HEAD http:\/\/127\.0\.0\.1:\d+\/v2\/team\/app\/manifests\/1\.0 -> 200 \[ratelimit-remaining \d+ of 100\]/);
      assert.ok(!r.stderr.includes('dckr_pat_secret') && !r.stderr.includes('hub-jwt'));
    });

    it('as a destination with create_repositories, a missing organization is created through the API first', async () => {
      const r = await run(config(), ['run', 'to-hub'], { HUB_TOKEN: 'dckr_pat_secret' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(orgs.has('neworg'));
      const created = hub.requests.find((q) => q.method === 'POST' && q.path === '/v2/orgs/');
      assert.deepEqual(JSON.parse(created!.body), { orgname: 'neworg', full_name: 'neworg', company: 'neworg' });
      assert.equal(await manifestDigest(src.url, 'neworg/x', '1'), tool.top.digest);
    });

    it('a wrong token fails at the login with the registry named and Hub’s message, no secret shown', async () => {
      const r = await run(config(), ['run', 'from-hub', '--dry-run'], { HUB_TOKEN: 'wrong-token' });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /registries\[0\] \(docker-hub\): Docker Hub login of "hubuser": Incorrect authentication credentials/);
      assert.ok(!r.stderr.includes('wrong-token'));
    });
  });

  describe('github-ghcr', () => {
    let registry: ProviderFake;
    let github: ApiFake;

    before(async () => {
      registry = await startProviderFake({ upstream: src, users: new Map([['octocat', 'ghp_0123456789abcdef']]) });
      github = await startApiFake(async (req, res, url) => {
        if (req.headers.authorization !== 'Bearer ghp_0123456789abcdef') return json(res, 401, { message: 'Requires authentication' });
        if (url.pathname === '/orgs/octo/packages') return json(res, 404, { message: 'Not Found' });
        if (url.pathname === '/users/octo/packages' && url.searchParams.get('package_type') === 'container') {
          const all = [{ name: 'app', package_type: 'container' }, { name: 'tools/cli', package_type: 'container' }];
          const page = Number(url.searchParams.get('page') ?? 1);
          const slice = pageOf(all, page, 1);
          const next = new URL(url.pathname, github.url);
          next.search = url.search;
          next.searchParams.set('page', String(page + 1));
          return json(res, 200, slice.items, slice.more ? { link: `<${next.href}>; rel="next"` } : {});
        }
        return false;
      });
      stops.push(registry.stop, github.stop);
    });

    const config = (filter: string) => `registries:
  - name: ghcr
    type: github-ghcr
    url: ${registry.url}
    api_url: ${github.url}
    credential: {username: octocat, password: {env: GHCR_PAT}}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-ghcr
    src_registry: ghcr
    dest_registry: branch
    dest_namespace: ghcr
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "${filter}"}]
`;

    it("lists a user's container packages through GitHub's API (PAT as Bearer, Link pages) where ghcr.io has no catalog, and copies", async () => {
      const r = await run(config('octo/**'), ['run', 'from-ghcr'], { GHCR_PAT: 'ghp_0123456789abcdef' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'ghcr/app', '1'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'ghcr/tools/cli', '1'), app.top.digest);
      assert.deepEqual(
        github.requests.map((q) => {
          const u = new URL(q.path, 'http://x');
          return `${u.pathname}${u.searchParams.has('page') ? ` page ${u.searchParams.get('page')}` : ''}`;
        }),
        ['/orgs/octo/packages', '/users/octo/packages', '/users/octo/packages page 2'],
      );
      assert.ok(!registry.requests.some((q) => q.path.startsWith('/v2/_catalog')), 'no catalog asked of ghcr.io');
      assert.ok(registry.tokenRequests.every((t) => t.user === 'octocat'));
    });

    it('a filter whose owner has wildcards cannot be listed: the error says what to write', async () => {
      const r = await run(config('*/app'), ['run', 'from-ghcr', '--dry-run'], { GHCR_PAT: 'ghp_0123456789abcdef' });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /ghcr\.io has no catalog, and GitHub lists packages per owner: the name filter must name the owner/);
    });
  });

  describe('google-gcr and artifact-registry', () => {
    let gcr: ProviderFake;
    let ar: ProviderFake;
    const key = JSON.stringify(
      {
        type: 'service_account',
        project_id: 'my-project',
        private_key_id: 'k1',
        private_key: '-----BEGIN PRIVATE KEY-----\nMIIEvQ: not a real key, with "quotes" and a colon\n-----END PRIVATE KEY-----\n',
        client_email: 'replicator@my-project.iam.gserviceaccount.com',
      },
      null,
      2,
    );
    let keyFile: string;

    before(async () => {
      // Google's token service takes `_json_key` with the whole key file as the password.
      [gcr, ar] = await Promise.all([
        startProviderFake({ upstream: dst, users: new Map([['_json_key', key]]), realmPath: '/v2/token' }),
        startProviderFake({ upstream: src, users: new Map([['oauth2accesstoken', 'ya29.a0AfB_access-token']]), realmPath: '/v2/token' }),
      ]);
      keyFile = join(dir, 'key.json');
      await writeFile(keyFile, key);
      stops.push(gcr.stop, ar.stop);
    });

    const config = (password: string) => `registries:
  - name: hq
    type: docker-registry
    url: ${src.url}
  - name: gcr
    type: google-gcr
    url: ${gcr.url}
    credential: {username: _json_key, password: ${password}}
  - name: ar
    type: artifact-registry
    url: ${ar.url}
    credential: {username: oauth2accesstoken, password: {env: GCP_ACCESS_TOKEN}}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: to-gcr
    src_registry: hq
    dest_registry: gcr
    dest_namespace: my-project
    filters: [{type: name, value: team/tool}]
  - name: from-ar
    src_registry: ar
    dest_registry: branch
    dest_namespace: ar
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "team/**"}, {type: tag, value: "2.0"}]
`;

    it('google-gcr: a service account JSON key (from a file) as the password of _json_key', async () => {
      const r = await run(config(`{file: ${keyFile}}`), ['run', 'to-gcr'], { GCP_ACCESS_TOKEN: 'ya29.a0AfB_access-token' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'my-project/tool', '1'), tool.top.digest);
      assert.ok(gcr.tokenRequests.length > 0 && gcr.tokenRequests.every((t) => t.user === '_json_key' && t.granted));
    });

    it('artifact-registry: an OAuth2 access token as the password of oauth2accesstoken', async () => {
      const r = await run(config(`{file: ${keyFile}}`), ['run', 'from-ar'], { GCP_ACCESS_TOKEN: 'ya29.a0AfB_access-token' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'ar/app', '2.0'), app.top.digest);
      assert.ok(ar.tokenRequests.every((t) => t.user === 'oauth2accesstoken' && t.granted));
    });

    it('a _json_key password that is no service account key is refused before any request, without showing it', async () => {
      const seen = gcr.requests.length;
      const r = await run(config('{env: NOT_A_KEY}'), ['run', 'to-gcr', '--dry-run'], { GCP_ACCESS_TOKEN: 'x', NOT_A_KEY: '{"type": "authorized_user", "refresh_token": "1//secret-refresh"}' });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /registries\[1\] \(google-gcr\): credential: the password of _json_key is not a service account key \(field "type" missing or wrong/);
      assert.ok(!r.stderr.includes('secret-refresh'));
      assert.equal(gcr.requests.length, seen, 'nothing sent');
    });
  });

  describe('azure-acr', () => {
    let acr: ProviderFake;

    before(async () => {
      acr = await startProviderFake({
        upstream: src,
        users: new Map([['8f1c2d3e-app-id', 'sp~secret.value']]),
        realmPath: '/oauth2/token',
        service: 'replicator.azurecr.io',
        // ACR lists a repository's tags only with metadata_read in the token.
        extraScopes: (method, repository, rest) => (method === 'GET' && rest.startsWith('tags/list') ? [`repository:${repository}:metadata_read`] : []),
      });
      stops.push(acr.stop);
    });

    it("lists with a service principal: the catalog, then tags with metadata_read as Harbor's authorizer asks, and copies", async () => {
      const config = `registries:
  - name: acr
    type: azure-acr
    url: ${acr.url}
    credential: {username: 8f1c2d3e-app-id, password: {env: AZURE_SP_SECRET}}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-acr
    src_registry: acr
    dest_registry: branch
    dest_namespace: acr
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "team/**"}]
`;
      const r = await run(config, ['run', 'from-acr'], { AZURE_SP_SECRET: 'sp~secret.value' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'acr/app', '2.0'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'acr/tool', '1'), tool.top.digest);
      assert.ok(acr.tokenRequests.some((t) => t.scopes.includes('registry:catalog:*')));
      const tagTokens = acr.tokenRequests.filter((t) => t.scopes.includes('repository:team/app:metadata_read'));
      assert.ok(tagTokens.length > 0 && tagTokens.every((t) => t.scopes.includes('repository:team/app:pull')), 'tags listed with pull and metadata_read in one token');
      assert.ok(!acr.requests.some((q) => q.path.includes('tags/list') && q.authorization && !q.authorization.startsWith('Bearer')));
    });
  });
});
