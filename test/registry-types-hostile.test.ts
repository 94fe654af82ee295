// A provider's API is as untrusted as a registry: its pages, names, errors and addresses. Through
// the real wiring (config, RegistryClients, the rule's lister, the planner): endless or looping
// pages end with PAGINATION_LOOP at limits.max_pages, a page on another origin is read without
// the credential, invalid names are errors of their own and never requested, malformed answers
// are refused by schema, provider text reaches errors escaped, and a registry's challenge cannot
// move where a cloud's signed requests go.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RegistryClients } from '../shared/rules/registry-endpoint.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { limitsOf } from '../shared/rules/config-schema.js';
import { planRule, type PlanEvent } from '../shared/rules/plan.js';
import { ruleRuntime } from '../shared/rules/rule-runtime.js';
import { startListener, type RecordingListener } from './support/listener.js';
import { json, startApiFake, startProviderFake, type ApiFake, type ProviderFake } from './support/provider-fake.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

describe('hostile provider APIs', () => {
  let upstream: TestRegistry;
  let api: ApiFake;
  let elsewhere: RecordingListener;
  let aliRegistry: ProviderFake;
  /** What the API answers next, per path. */
  let route: (url: URL) => { status?: number; body: unknown; headers?: Record<string, string> } | undefined = () => undefined;

  before(async () => {
    upstream = await startRegistry();
    api = await startApiFake((_req, res, url) => {
      const r = route(url);
      if (!r) return false;
      if (typeof r.body === 'string') {
        res.writeHead(r.status ?? 200, { 'content-type': 'text/html', ...r.headers });
        res.end(r.body);
        return true;
      }
      return json(res, r.status ?? 200, r.body, r.headers ?? {});
    });
    elsewhere = await startListener((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[]'));
    aliRegistry = await startProviderFake({ upstream, users: new Map(), service: 'registry.aliyuncs.com:evil.example/steal:1' });
  });
  after(async () => {
    await Promise.all([upstream?.stop(), api?.stop(), elsewhere?.stop(), aliRegistry?.stop()]);
  });

  /** Plans `rule` of a config whose registry `p` is the provider under test; every event, or the error. */
  async function plan(registry: string, filter: string, maxPages = 5): Promise<PlanEvent[]> {
    const loaded = parseConfig(
      `registries:\n${registry}\n  - {name: branch, type: docker-registry, url: "${upstream.url}"}\nrules:\n  - {name: r, src_registry: p, dest_registry: branch, dest_namespace: x, filters: [{type: name, value: "${filter}"}]}\nlimits: {max_pages: ${maxPages}}\n`,
      'hostile.yaml',
    );
    const secrets = { env: { P_SECRET: 'provider-secret-value' } };
    const clients = new RegistryClients({ secrets, limits: limitsOf(loaded.config) });
    const rt = await ruleRuntime(loaded, 'r', clients, { secrets });
    return collect(planRule(rt.planInput()));
  }

  const hub = () => `  - {name: p, type: docker-hub, url: "${upstream.url}", api_url: "${api.url}"}`;
  const ghcr = () => `  - {name: p, type: github-ghcr, url: "${upstream.url}", api_url: "${api.url}", credential: {username: u, password: {env: P_SECRET}}}`;

  it("Docker Hub's API saying `next` forever: PAGINATION_LOOP at limits.max_pages, naming the registry", async () => {
    let pages = 0;
    route = (url) => {
      if (url.pathname !== '/v2/repositories/team/') return undefined; // tags: 404, none
      pages++;
      return { body: { next: 'https://hub.docker.com/always-more', results: [{ name: `r${pages}`, namespace: 'team' }] } };
    };
    await assert.rejects(plan(hub(), 'team/**', 3), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PAGINATION_LOOP');
      assert.match(err.message, /registries\[0\] \(docker-hub\) namespace team repositories: pagination stopped: more than 3 pages \(limits\.max_pages\)/);
      return true;
    });
    assert.equal(pages, 3);
  });

  it("GitHub's Link back to a page already read: PAGINATION_LOOP; a Link to another origin is read without the PAT", async () => {
    route = (url) => (url.pathname.endsWith('/packages') ? { body: [{ name: 'a' }], headers: { link: `<${api.url}${url.pathname}${url.search}>; rel="next"` } } : undefined);
    await assert.rejects(plan(ghcr(), 'octo/**'), /pagination stopped: page 2 repeats a page already read/);

    route = (url) => (url.pathname.endsWith('/packages') ? { body: [{ name: 'a' }], headers: { link: `<${elsewhere.url}/steal?page=2>; rel="next"` } } : undefined);
    const seen = api.requests.length;
    await plan(ghcr(), 'octo/**').catch(() => undefined);
    assert.ok(api.requests.slice(seen).every((q) => q.authorization === 'Bearer provider-secret-value'), 'the PAT on the API’s origin');
    assert.equal(elsewhere.requests.length, 1, 'the next page was read');
    assert.deepEqual(elsewhere.authorizations(), [], 'without the PAT');
  });

  it('names a provider lists that break the grammar are errors of their own, shown escaped, never requested', async () => {
    route = (url) => {
      if (url.pathname === '/v2/repositories/team/') return { body: { next: null, results: [{ name: 'Evil', namespace: 'team' }, { name: '..\n[INFO] forged', namespace: 'team' }] } };
      return undefined;
    };
    const seen = api.requests.length;
    const events = await plan(hub(), 'team/**');
    const errors = events.filter((e) => e.kind === 'error');
    assert.equal(errors.length, 2);
    assert.ok(errors.every((e) => e.kind === 'error' && e.code === 'INVALID_NAME'));
    assert.ok(errors.some((e) => e.kind === 'error' && e.repository.includes('\\n[INFO] forged')), 'escaped, no forged line');
    assert.equal(api.requests.length, seen + 1, 'no tag listing asked for them');
  });

  it("answers of the wrong shape or not JSON are refused by schema; the provider's message reaches errors escaped and cut", async () => {
    route = (url) => (url.pathname.endsWith('/packages') ? { body: { message: 'not a list' } } : undefined);
    await assert.rejects(plan(ghcr(), 'octo/**'), /INVALID|unexpected shape \(value: Invalid input: expected array, received object\)/);
    route = (url) => (url.pathname.endsWith('/packages') ? { body: '<html>login page</html>' } : undefined);
    await assert.rejects(plan(ghcr(), 'octo/**'), /answered something that is not JSON/);
    route = (url) => (url.pathname.endsWith('/packages') ? { status: 403, body: { message: `denied\u001b[31m\n${'x'.repeat(500)}` } } : undefined);
    await assert.rejects(plan(ghcr(), 'octo/**'), (err: Error) => {
      assert.match(err.message, /orgs octo packages: denied\\u001b\[31m\\nx+/);
      assert.ok(!err.message.includes('\n') && !err.message.includes('\u001b'));
      assert.ok(err.message.length < 600, 'at most 200 characters of the provider’s text');
      return true;
    });
  });

  it("GitLab's X-Next-Page that is no page number is refused", async () => {
    route = (url) => (url.pathname === '/api/v4/projects' ? { body: [], headers: { 'x-next-page': '2; rm -rf' } } : undefined);
    const gitlab = `  - {name: p, type: gitlab, url: "${upstream.url}", api_url: "${api.url}", credential: {username: u, password: {env: P_SECRET}}}`;
    await assert.rejects(plan(gitlab, 'group/**'), /GitLab's X-Next-Page is not a page number/);
  });

  it("a registry's challenge cannot move where Alibaba's signed requests go: the region must be an id", async () => {
    const ali = `  - {name: p, type: ali-acr, url: "${aliRegistry.url}", credential: {username: LTAIkey, password: {env: P_SECRET}}}`;
    const seen = elsewhere.requests.length;
    await assert.rejects(plan(ali, 'acme/**'), /the registry's token service is not Alibaba's \(registry\.aliyuncs\.com:<region>:\.\.\.\); set region/);
    assert.equal(elsewhere.requests.length, seen);
  });
});
