// Cloud registry types whose credential is an access key pair exchanged for a registry token
// through the cloud's API, each against a stand-in of that API which checks the request's
// signature from what it received (test/support/cloud-signatures.ts), and of the registry in
// front of a real docker-registry; each through a real `harbor-replicator run`: ali-acr
// (personal edition, ROA; Enterprise Edition, RPC), tencent-tcr, huawei-SWR, volcengine-cr.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { checkAcs3, checkTc3, checkVolc } from './support/cloud-signatures.js';
import { type Layout } from './support/fixtures.js';
import { manifestDigest } from './support/inspect.js';
import { basicUser, catalogOf, json, pageOf, startApiFake, startProviderFake, tagsOf, type ApiFake, type ProviderFake } from './support/provider-fake.js';
import { type TestRegistry } from './support/registry.js';
import { configRunner, startTypeRegistries } from './support/type-registries.js';

describe('registry types: ali-acr, tencent-tcr, huawei-SWR, volcengine-cr', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let app: Layout;
  let tool: Layout;
  let dir: string;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    ({ src, dst, app, tool, dir } = await startTypeRegistries('hr-types-cloud-', ['acme/app:1', 'acme/app:2', 'shop/cart:1', 'team/tool:1'], ['acme/tool:1', 'shop/pay:1']));
  });
  after(async () => {
    await Promise.all([...stops.map((s) => s()), src?.stop(), dst?.stop()]);
  });

  const run = configRunner(() => dir);

  /** The repositories of namespace `ns` in the source registry, as `name`s. */
  const reposIn = async (ns: string) => (await catalogOf(src)).filter((r) => r.startsWith(`${ns}/`)).map((r) => r.slice(ns.length + 1));

  describe('ali-acr', () => {
    const keys = new Map([['LTAI5tExampleAccessKey', 'AliSecretExample0123456789']]);
    const nonces = new Set<string>();
    let personal: ProviderFake;
    let personalApi: ApiFake;
    let ee: ProviderFake;
    let eeApi: ApiFake;

    before(async () => {
      personal = await startProviderFake({ upstream: src, users: new Map(), realmPath: '/auth', service: 'registry.aliyuncs.com:cn-hangzhou:26842' });
      // cr.<region>.aliyuncs.com, personal edition (ROA, version 2016-06-07).
      personalApi = await startApiFake(async (_req, res, url, seen) => {
        const refused = checkAcs3(seen, keys, nonces);
        if (refused) return json(res, 403, { code: refused, message: 'The request signature does not conform to Aliyun standards.' });
        if (seen.headers['x-acs-version'] !== '2016-06-07') return json(res, 400, { code: 'InvalidVersion', message: 'version' });
        const page = Number(url.searchParams.get('Page') ?? 1);
        if (url.pathname === '/tokens' && seen.headers['x-acs-action'] === 'GetAuthorizationToken') {
          const password = `acr-temp-${nonces.size}`;
          personal.users.set('cr_temp_user', password);
          return json(res, 200, { data: { authorizationToken: password, tempUserName: 'cr_temp_user', expireDate: Date.now() + 3600_000 } });
        }
        if (url.pathname === '/namespace') return json(res, 200, { data: { namespaces: [{ namespace: 'acme' }, { namespace: 'shop' }] } });
        let m = /^\/repos\/([^/]+)$/.exec(url.pathname);
        if (m) {
          const repos = (await reposIn(m[1]!)).map((repoName) => ({ repoName, repoNamespace: m![1], repoStatus: 'NORMAL' }));
          const slice = pageOf(repos, page, 1);
          return json(res, 200, { data: { repos: slice.items, total: repos.length, page, pageSize: 1 } });
        }
        m = /^\/repos\/([^/]+)\/([^/]+)\/tags$/.exec(url.pathname);
        if (m) {
          const tags = (await tagsOf(src, `${m[1]}/${m[2]}`)).map((tag) => ({ tag, status: 'NORMAL' }));
          const slice = pageOf(tags, page, 1);
          return json(res, 200, { data: { tags: slice.items, total: tags.length, page, pageSize: 1 } });
        }
        return false;
      });
      ee = await startProviderFake({ upstream: src, users: new Map(), realmPath: '/service/token', service: 'registry.aliyuncs.com:cn-shanghai:cri-8y7x6w5v4u' });
      // Enterprise Edition: RPC actions (version 2018-12-01) with InstanceId.
      eeApi = await startApiFake(async (_req, res, url, seen) => {
        const refused = checkAcs3(seen, keys, nonces);
        if (refused) return json(res, 403, { Code: refused, Message: 'Specified signature is not matched with our calculation.' });
        const q = url.searchParams;
        const action = seen.headers['x-acs-action'];
        if (url.pathname !== '/' || seen.headers['x-acs-version'] !== '2018-12-01' || q.get('InstanceId') !== 'cri-8y7x6w5v4u') return false;
        const page = Number(q.get('PageNo') ?? 1);
        if (action === 'GetAuthorizationToken') {
          ee.users.set('cr_ee_temp', 'ee-temp-password');
          return json(res, 200, { AuthorizationToken: 'ee-temp-password', TempUsername: 'cr_ee_temp', ExpireTime: Date.now() + 3600_000, GetAuthorizationTokenIsSuccess: true });
        }
        if (action === 'ListNamespace') {
          const all = [{ NamespaceName: 'acme' }, { NamespaceName: 'shop' }];
          return json(res, 200, { Namespaces: pageOf(all, page, 1).items, TotalCount: String(all.length), PageNo: page, PageSize: 1, ListNamespaceIsSuccess: true });
        }
        if (action === 'ListRepository') {
          const ns = q.get('RepoNamespaceName')!;
          const repos = (await reposIn(ns)).map((RepoName) => ({ RepoName, RepoNamespaceName: ns, RepoId: `crr-${ns}-${RepoName}` }));
          return json(res, 200, { Repositories: pageOf(repos, page, 1).items, TotalCount: String(repos.length), PageNo: page, PageSize: 1, ListRepositoryIsSuccess: true });
        }
        if (action === 'ListRepoTag') {
          const [, ns, name] = /^crr-([^-]+)-(.+)$/.exec(q.get('RepoId') ?? '') ?? [];
          const images = (await tagsOf(src, `${ns}/${name}`)).map((Tag) => ({ Tag }));
          return json(res, 200, { Images: pageOf(images, page, 1).items, TotalCount: String(images.length), ListRepoTagIsSuccess: true });
        }
        return false;
      });
      stops.push(personal.stop, personalApi.stop, ee.stop, eeApi.stop);
    });

    const config = () => `registries:
  - name: acr
    type: ali-acr
    url: ${personal.url}
    api_url: ${personalApi.url}
    credential: {username: LTAI5tExampleAccessKey, password: {env: ALI_SECRET}}
  - name: acr-ee
    type: ali-acr
    url: ${ee.url}
    api_url: ${eeApi.url}
    credential: {username: LTAI5tExampleAccessKey, password: {env: ALI_SECRET}}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-acr
    src_registry: acr
    dest_registry: branch
    dest_namespace: ali
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "acme/**"}]
  - name: from-acr-ee
    src_registry: acr-ee
    dest_registry: branch
    dest_namespace: ali-ee
    filters: [{type: name, value: "*/pay"}]
`;

    it('personal edition: the challenge names the region; GetAuthorizationToken (ROA, signed ACS3) gives the registry login; listing through the API', async () => {
      const r = await run(config(), ['run', 'from-acr'], { ALI_SECRET: 'AliSecretExample0123456789' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'ali/app', '2'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'ali/tool', '1'), tool.top.digest);
      const actions = personalApi.requests.map((q) => `${q.headers['x-acs-action']} ${new URL(q.path, 'http://x').pathname}`);
      assert.ok(actions.includes('GetAuthorizationToken /tokens'));
      assert.ok(actions.includes('GetRepoListByNamespace /repos/acme') && !actions.includes('GetNamespaceList /namespace'), 'the named namespace, without listing them all');
      assert.ok(personalApi.requests.some((q) => /\/repos\/acme\/app\/tags\?.*Page=2/.test(q.path)), 'tag pages until the total');
      assert.ok(personal.tokenRequests.every((t) => t.user === 'cr_temp_user' && t.granted), "the registry saw the temporary user, never the AccessKey");
      assert.ok(!personal.requests.some((q) => q.authorization?.includes('ACS3')));
    });

    it('Enterprise Edition (cri- instance in the challenge): RPC actions with InstanceId, every namespace listed for a wildcard', async () => {
      const r = await run(config(), ['run', 'from-acr-ee'], { ALI_SECRET: 'AliSecretExample0123456789' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'ali-ee/pay', '1'), tool.top.digest);
      const actions = eeApi.requests.map((q) => q.headers['x-acs-action']);
      for (const a of ['GetAuthorizationToken', 'ListNamespace', 'ListRepository', 'ListRepoTag']) assert.ok(actions.includes(a), a);
      assert.ok(ee.tokenRequests.every((t) => t.user === 'cr_ee_temp'));
    });

    it('a wrong secret: the API refuses the signature, and the error names the registry and Alibaba’s code, no secret', async () => {
      const r = await run(config(), ['run', 'from-acr', '--dry-run'], { ALI_SECRET: 'not-the-secret' });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /registries\[0\] \(ali-acr\): ACR GetRepoListByNamespace: SignatureDoesNotMatch The request signature does not conform/);
      assert.ok(!r.stderr.includes('not-the-secret'));
    });
  });

  describe('tencent-tcr', () => {
    const keys = new Map([['AKIDexampleTcrSecretId01', 'TcrSecretKeyExample0123']]);
    let registry: ProviderFake;
    let api: ApiFake;
    const namespaces = new Map<string, boolean>([['acme', false], ['shop', false]]);
    const created = new Set<string>();

    before(async () => {
      registry = await startProviderFake({ upstream: src, users: new Map(), realmPath: '/service/token', service: 'tcr' });
      api = await startApiFake(async (_req, res, _url, seen) => {
        const refused = checkTc3(seen, keys);
        if (refused) return json(res, 200, { Response: { Error: { Code: refused, Message: 'The provided credentials could not be validated.' }, RequestId: 'r-1' } });
        const action = seen.headers['x-tc-action'];
        const region = seen.headers['x-tc-region'];
        const p = JSON.parse(seen.body) as Record<string, unknown>;
        const ok = (body: Record<string, unknown>) => json(res, 200, { Response: { ...body, RequestId: 'r-2' } });
        if (seen.headers['x-tc-version'] !== '2019-09-24') return ok({ Error: { Code: 'InvalidParameter', Message: 'version' } });
        if (action === 'DescribeInstances') {
          const name = (p.Filters as Array<{ Values: string[] }>)[0]!.Values[0];
          assert.equal(region, 'ap-guangzhou');
          return ok(name === registry.host ? { TotalCount: 1, Registries: [{ RegistryId: 'tcr-abc123', RegionName: 'ap-singapore', PublicDomain: registry.host }] } : { TotalCount: 0, Registries: [] });
        }
        if (region !== 'ap-singapore' || p.RegistryId !== 'tcr-abc123') return ok({ Error: { Code: 'ResourceNotFound', Message: 'no such instance in this region' } });
        if (action === 'CreateInstanceToken') {
          registry.users.set('100012345678', 'tcr-temporary-token');
          return ok({ Username: '100012345678', Token: 'tcr-temporary-token', ExpTime: Date.now() + 3600_000 });
        }
        const limit = Number(p.Limit ?? 20);
        if (action === 'DescribeNamespaces') {
          const all = [...namespaces.keys()].filter((ns) => !p.NamespaceName || ns === p.NamespaceName).map((Name) => ({ Name, Public: namespaces.get(Name) }));
          // Harbor's offsets for namespaces start at 0 and count pages.
          const offset = Number(p.Offset ?? 0);
          return ok({ NamespaceList: all.slice(offset * limit, (offset + 1) * limit), TotalCount: all.length });
        }
        if (action === 'DescribeRepositories') {
          const ns = String(p.NamespaceName);
          const all = [...(await reposIn(ns)), ...[...created].filter((c) => c.startsWith(`${ns}/`)).map((c) => c.slice(ns.length + 1))]
            .filter((r) => !p.RepositoryName || r === p.RepositoryName)
            .map((r) => ({ Name: `${ns}/${r}`, Namespace: ns }));
          const offset = Number(p.Offset ?? 1);
          return ok({ RepositoryList: all.slice((offset - 1) * limit, offset * limit), TotalCount: all.length });
        }
        if (action === 'DescribeImages') {
          const tags = (await tagsOf(src, `${p.NamespaceName}/${p.RepositoryName}`)).map((ImageVersion) => ({ ImageVersion }));
          const offset = Number(p.Offset ?? 1);
          return ok({ ImageInfoList: tags.slice((offset - 1) * limit, offset * limit), TotalCount: tags.length });
        }
        if (action === 'CreateNamespace') {
          namespaces.set(String(p.NamespaceName), p.IsPublic === true);
          return ok({});
        }
        if (action === 'CreateRepository') {
          created.add(`${p.NamespaceName}/${p.RepositoryName}`);
          return ok({});
        }
        return false;
      });
      stops.push(registry.stop, api.stop);
    });

    const config = (user = 'AKIDexampleTcrSecretId01') => `registries:
  - name: tcr
    type: tencent-tcr
    url: ${registry.url}
    api_url: ${api.url}
    credential: {username: "${user}", password: {env: TCR_SECRET_KEY}}
    create_repositories: true
  - name: hq
    type: docker-registry
    url: ${src.url}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-tcr
    src_registry: tcr
    dest_registry: branch
    dest_namespace: tcr
    dest_namespace_replace_count: 0
    filters: [{type: name, value: "**"}, {type: tag, value: "1"}]
  - name: to-tcr
    src_registry: hq
    dest_registry: tcr
    dest_namespace: mirror
    filters: [{type: name, value: team/tool}]
`;

    it('finds the instance (DescribeInstances by name), exchanges the SecretId/SecretKey for an instance token, lists every namespace, and copies', async () => {
      const r = await run(config(), ['run', 'from-tcr'], { TCR_SECRET_KEY: 'TcrSecretKeyExample0123' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      for (const [repo, layout] of [['tcr/acme/app', app], ['tcr/acme/tool', tool], ['tcr/shop/cart', app], ['tcr/shop/pay', tool]] as const) {
        assert.equal(await manifestDigest(dst.url, repo, '1'), layout.top.digest, repo);
      }
      const actions = new Set(api.requests.map((q) => q.headers['x-tc-action']));
      for (const a of ['DescribeInstances', 'CreateInstanceToken', 'DescribeNamespaces', 'DescribeRepositories', 'DescribeImages']) assert.ok(actions.has(a), a);
      assert.ok(registry.tokenRequests.every((t) => t.user === '100012345678' && t.granted));
    });

    it('as a destination: a missing namespace is created private, then the repository, before the push', async () => {
      const r = await run(config(), ['run', 'to-tcr'], { TCR_SECRET_KEY: 'TcrSecretKeyExample0123' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(namespaces.get('mirror'), false, 'created, and private');
      assert.ok(created.has('mirror/tool'));
      assert.equal(await manifestDigest(src.url, 'mirror/tool', '1'), app.top.digest);
    });

    it('a wrong key: TCR answers 200 with Response.Error, and the run fails with its code; docker login credentials are refused at once', async () => {
      const r = await run(config(), ['run', 'from-tcr', '--dry-run'], { TCR_SECRET_KEY: 'wrong-key' });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /registries\[0\] \(tencent-tcr\): TCR DescribeInstances failed: AuthFailure\.SignatureFailure/);
      const login = await run(config('100012345678'), ['run', 'from-tcr', '--dry-run'], { TCR_SECRET_KEY: 'x' });
      assert.notEqual(login.code, 0);
      assert.match(login.stderr, /tencent-tcr takes a SecretId\/SecretKey pair \(the user starts with AKID\), not docker login credentials/);
    });
  });

  describe('huawei-SWR', () => {
    let swr: ProviderFake;
    const orgs = new Set(['acme']);
    // SWR's login for an AK/SK pair: <region>@<AK>, hex HMAC-SHA256 of the AK under the SK.
    const loginKey = createHmac('sha256', 'SwrSecretKeyExample').update('SWRAKEXAMPLE01').digest('hex');

    before(async () => {
      swr = await startProviderFake({
        upstream: src,
        users: new Map([['cn-north-4@SWRAKEXAMPLE01', loginKey]]),
        realmPath: '/swr/auth/v2/registry/auth/',
        api: async (req, res, url, seen) => {
          if (!url.pathname.startsWith('/dockyard/')) return false;
          const b = basicUser(req.headers.authorization);
          if (!b || b.user !== 'cn-north-4@SWRAKEXAMPLE01' || b.password !== loginKey) return json(res, 401, { errorCode: 'SVCSTG.SWR.4010001', errorMessage: 'Authenticate Error' });
          if (url.pathname === '/dockyard/v2/repositories' && url.searchParams.get('filter') === 'center::self') {
            const repos = [];
            for (const r of await catalogOf(src)) {
              const [namespace, ...rest] = r.split('/');
              repos.push({ name: rest.join('/'), namespace, category: 'other', tags: await tagsOf(src, r), num_images: 1 });
            }
            return json(res, 200, repos);
          }
          const m = /^\/dockyard\/v2\/namespaces\/([^/]+)$/.exec(url.pathname);
          if (m && req.method === 'GET') return orgs.has(m[1]!) ? json(res, 200, { id: 1, name: m[1], auth: 7 }) : json(res, 404, { errorCode: 'SVCSTG.SWR.4040002', errorMessage: 'Namespace not found' });
          if (url.pathname === '/dockyard/v2/namespaces' && req.method === 'POST') {
            orgs.add((JSON.parse(seen.body) as { namespace: string }).namespace);
            return json(res, 201, {});
          }
          return false;
        },
      });
      stops.push(swr.stop);
    });

    const config = (credential: string) => `registries:
  - name: swr
    type: huawei-SWR
    url: ${swr.url}
    region: cn-north-4
    credential: ${credential}
    create_repositories: true
  - name: hq
    type: docker-registry
    url: ${src.url}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-swr
    src_registry: swr
    dest_registry: branch
    dest_namespace: swr
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "shop/*"}]
  - name: to-swr
    src_registry: hq
    dest_registry: swr
    dest_namespace: neworg
    filters: [{type: name, value: team/tool}]
`;

    it("an AK/SK pair becomes SWR's login (region@AK and its login key); listing through dockyard, tags as listed", async () => {
      const r = await run(config('{username: SWRAKEXAMPLE01, password: {env: SWR_SK}}'), ['run', 'from-swr'], { SWR_SK: 'SwrSecretKeyExample' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'swr/cart', '1'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'swr/pay', '1'), tool.top.digest);
      assert.ok(swr.tokenRequests.every((t) => t.user === 'cn-north-4@SWRAKEXAMPLE01' && t.granted));
      assert.ok(!swr.requests.some((q) => q.path.includes('/tags/list')), 'tags came with the listing');
    });

    it('the login credential as Harbor takes it (region@AK, login key) creates a missing organization, then pushes', async () => {
      const r = await run(config(`{username: "cn-north-4@SWRAKEXAMPLE01", password: {env: SWR_LOGIN}}`), ['run', 'to-swr'], { SWR_LOGIN: loginKey });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(orgs.has('neworg'));
      assert.equal(await manifestDigest(src.url, 'neworg/tool', '1'), app.top.digest);
    });
  });

  describe('volcengine-cr', () => {
    const keys = new Map([['AKLTvolcExample0001', 'VolcSecretExample==']]);
    let registry: ProviderFake;
    let api: ApiFake;
    const namespaces = new Set(['acme', 'shop']);
    const created = new Set<string>();

    before(async () => {
      registry = await startProviderFake({ upstream: src, users: new Map(), realmPath: '/api/auth/token', service: 'myreg-cn-beijing.cr.volces.com' });
      api = await startApiFake(async (_req, res, url, seen) => {
        const meta = (extra: Record<string, unknown> = {}) => ({ RequestId: 'v-1', Action: url.searchParams.get('Action'), Version: url.searchParams.get('Version'), Service: 'cr', Region: 'cn-beijing', ...extra });
        const refused = checkVolc(seen, keys);
        if (refused) return json(res, 401, { ResponseMetadata: meta({ Error: { Code: refused, Message: 'The request signature we calculated does not match' } }) });
        if (!seen.authorization!.includes('/cn-beijing/cr/request')) return json(res, 400, { ResponseMetadata: meta({ Error: { Code: 'InvalidRegion', Message: 'region' } }) });
        const p = JSON.parse(seen.body) as { Registry: string; PageNumber?: number; PageSize?: number; Filter?: { Names?: string[]; Namespaces?: string[] }; Namespace?: string; Repository?: string; Name?: string };
        if (url.searchParams.get('Version') !== '2022-05-12' || p.Registry !== 'myreg') return json(res, 404, { ResponseMetadata: meta({ Error: { Code: 'NotFound.Registry', Message: 'registry' } }) });
        const ok = (Result: unknown) => json(res, 200, { ResponseMetadata: meta(), Result });
        const list = (names: string[]) => {
          const page = p.PageNumber ?? 1;
          return ok({ Items: pageOf(names, page, 1).items.map((Name) => ({ Name })), TotalCount: names.length, PageNumber: page, PageSize: 1 });
        };
        switch (url.searchParams.get('Action')) {
          case 'GetAuthorizationToken':
            registry.users.set('myreg-user', 'volc-temporary-token');
            return ok({ Username: 'myreg-user', Token: 'volc-temporary-token', ExpireTime: new Date(Date.now() + 3600_000).toISOString() });
          case 'ListNamespaces':
            return list([...namespaces].filter((ns) => !p.Filter?.Names || p.Filter.Names.includes(ns)));
          case 'ListRepositories': {
            const ns = p.Filter!.Namespaces![0]!;
            const all = [...(await reposIn(ns)), ...[...created].filter((c) => c.startsWith(`${ns}/`)).map((c) => c.slice(ns.length + 1))];
            return list(all.filter((r) => !p.Filter?.Names || p.Filter.Names.includes(r)));
          }
          case 'ListTags':
            return list(await tagsOf(src, `${p.Namespace}/${p.Repository}`));
          case 'CreateNamespace':
            namespaces.add(p.Name!);
            return ok({});
          case 'CreateRepository':
            created.add(`${p.Namespace}/${p.Name}`);
            return ok({});
        }
        return false;
      });
      stops.push(registry.stop, api.stop);
    });

    const config = () => `registries:
  - name: volc
    type: volcengine-cr
    url: ${registry.url}
    api_url: ${api.url}
    instance: myreg
    region: cn-beijing
    credential: {username: AKLTvolcExample0001, password: {env: VOLC_SECRET}}
    create_repositories: true
  - name: hq
    type: docker-registry
    url: ${src.url}
  - name: branch
    type: docker-registry
    url: ${dst.url}
rules:
  - name: from-volc
    src_registry: volc
    dest_registry: branch
    dest_namespace: volc
    dest_namespace_replace_count: 1
    filters: [{type: name, value: "acme/**"}]
  - name: to-volc
    src_registry: hq
    dest_registry: volc
    dest_namespace: newns
    filters: [{type: name, value: team/tool}]
`;

    it('exchanges the AccessKey pair for a registry token (GetAuthorizationToken, signed HMAC-SHA256), lists through the API, and copies', async () => {
      const r = await run(config(), ['run', 'from-volc'], { VOLC_SECRET: 'VolcSecretExample==' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await manifestDigest(dst.url, 'volc/app', '2'), app.top.digest);
      assert.equal(await manifestDigest(dst.url, 'volc/tool', '1'), tool.top.digest);
      const actions = api.requests.map((q) => new URL(q.path, 'http://x').searchParams.get('Action'));
      for (const a of ['GetAuthorizationToken', 'ListNamespaces', 'ListRepositories', 'ListTags']) assert.ok(actions.includes(a), a);
      assert.ok(registry.tokenRequests.every((t) => t.user === 'myreg-user' && t.granted));
    });

    it('as a destination: CreateNamespace, then CreateRepository, then the push', async () => {
      const r = await run(config(), ['run', 'to-volc'], { VOLC_SECRET: 'VolcSecretExample==' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(namespaces.has('newns') && created.has('newns/tool'));
      assert.equal(await manifestDigest(src.url, 'newns/tool', '1'), app.top.digest);
    });
  });
});
