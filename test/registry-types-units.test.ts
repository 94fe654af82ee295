// The registry types' small decisions, each on its own: where a type's registry is (Docker Hub,
// Alibaba's API address), what a challenge or a host says (Alibaba, Volcengine, SWR), Quay's
// JSON credential, path rules and upload traits, credentials that expire, and what the AWS
// deployment requires of `api_token`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deploymentOf } from '../infra/config.js';
import { parseAliService } from '../shared/registry-types/ali-acr.js';
import { expiringCredentials } from '../shared/registry-types/expiring-credentials.js';
import { swrRegion } from '../shared/registry-types/huawei-swr.js';
import { quayCredentials } from '../shared/registry-types/quay.js';
import { parseVolcHost } from '../shared/registry-types/volcengine-cr.js';
import { registrySchema, type RegistryConfig } from '../shared/rules/config-schema.js';
import { destinationRepository, pathRuleOf } from '../shared/rules/destination.js';
import { ConfigError, parseConfig } from '../shared/rules/load-config.js';
import { endpointOf } from '../shared/rules/registry-endpoint.js';
import { uploadChunkSize } from '../shared/rules/registry-types.js';

const reg = (r: Record<string, unknown>): RegistryConfig => registrySchema.parse({ name: 'r', ...r });

describe('registry types: units', () => {
  it("each type's registry host: Docker Hub's, Alibaba's API address mapped to its registry, others as configured", () => {
    assert.equal(endpointOf(reg({ type: 'docker-hub' })).host, 'registry-1.docker.io');
    assert.equal(endpointOf(reg({ type: 'docker-hub', url: 'https://hub.docker.com' })).host, 'registry-1.docker.io');
    assert.equal(endpointOf(reg({ type: 'docker-hub', url: 'http://127.0.0.1:5000' })).host, '127.0.0.1:5000', 'a stand-in or a mirror of Hub');
    assert.equal(endpointOf(reg({ type: 'ali-acr', url: 'https://cr.cn-hangzhou.aliyuncs.com' })).host, 'registry.cn-hangzhou.aliyuncs.com', "Harbor's getRegistryURL");
    assert.equal(endpointOf(reg({ type: 'ali-acr', url: 'https://myinst-registry.cn-shanghai.cr.aliyuncs.com' })).host, 'myinst-registry.cn-shanghai.cr.aliyuncs.com');
    assert.equal(endpointOf(reg({ type: 'quay', url: 'https://quay.io' })).host, 'quay.io');
  });

  it("what a challenge or an address says: Alibaba's service, Volcengine's host, SWR's region", () => {
    assert.deepEqual(parseAliService('registry.aliyuncs.com:cn-hangzhou:26842'), { region: 'cn-hangzhou', instance: undefined });
    assert.deepEqual(parseAliService('registry.aliyuncs.com:cn-shanghai:cri-8y7x6w5v4u'), { region: 'cn-shanghai', instance: 'cri-8y7x6w5v4u' });
    assert.equal(parseAliService('harbor-registry'), undefined);
    assert.equal(parseAliService('registry.aliyuncs.com:evil.example/x:1'), undefined, 'a region that would move the API host');
    assert.deepEqual(parseVolcHost('myreg-cn-beijing.cr.volces.com'), { registry: 'myreg', region: 'cn-beijing' });
    assert.deepEqual(parseVolcHost('my-team-reg-cn-shanghai.cr.ivolces.com'), { registry: 'my-team-reg', region: 'cn-shanghai' });
    assert.equal(parseVolcHost('registry.example.com'), undefined);
    assert.equal(swrRegion('swr.cn-north-4.myhuaweicloud.com'), 'cn-north-4');
    assert.equal(swrRegion('swr.ap-southeast-1.myhuaweicloud.eu'), 'ap-southeast-1');
    assert.equal(swrRegion('registry.example.com'), undefined);
  });

  it("Quay's credential: Harbor's JSON document, or user and password with api_token", () => {
    const json = JSON.stringify({ account_name: 'org+bot', docker_cli_password: 'pw', oauth2_token: 'tok' });
    assert.deepEqual(quayCredentials({ username: 'json_file', password: json }, undefined), { registry: { username: 'org+bot', password: 'pw' }, apiToken: 'tok' });
    assert.deepEqual(quayCredentials({ username: 'json_file', password: json }, 'configured'), { registry: { username: 'org+bot', password: 'pw' }, apiToken: 'configured' });
    assert.deepEqual(quayCredentials({ username: 'org+bot', password: '{not json' }, undefined), { registry: { username: 'org+bot', password: '{not json' }, apiToken: undefined });
  });

  it("path rules: DTR namespace/name exactly, Artifactory's key and Volcengine's namespace first", () => {
    assert.equal(pathRuleOf('dtr'), 'only-two');
    assert.equal(pathRuleOf('jfrog-artifactory'), 'at-least-two');
    assert.equal(pathRuleOf('volcengine-cr'), 'at-least-two');
    assert.equal(pathRuleOf('quay'), 'any');
    assert.throws(() => destinationRepository('app', '', -1, pathRuleOf('jfrog-artifactory')), /contains only 1 path component, but the destination registry requires at least 2/);
    assert.equal(destinationRepository('team/app', 'docker-local', -1, pathRuleOf('jfrog-artifactory')), 'docker-local/app');
  });

  it('upload traits: Artifactory takes each blob as one PATCH (chunked when asked); ECR never chunks; others one PUT unless asked', () => {
    assert.equal(uploadChunkSize(false, reg({ type: 'jfrog-artifactory', url: 'https://a' })), Number.MAX_SAFE_INTEGER);
    assert.equal(uploadChunkSize(true, reg({ type: 'jfrog-artifactory', url: 'https://a', chunk_size: '5MiB' })), 5 * 1024 * 1024);
    assert.equal(uploadChunkSize(true, reg({ type: 'aws-ecr', url: 'https://1.dkr.ecr.eu-west-1.amazonaws.com' })), undefined);
    assert.equal(uploadChunkSize(false, reg({ type: 'quay', url: 'https://q' })), undefined);
  });

  it('issued credentials: fetched once for concurrent callers, kept until shortly before they lapse, never after a failure', async () => {
    let now = 1_000_000;
    let calls = 0;
    let fail = false;
    const provider = expiringCredentials(async () => {
      calls++;
      if (fail) throw new Error('api down');
      return { credentials: { username: 'tmp', password: `p${calls}` }, expiresAt: now + 60 * 60_000 };
    }, () => now);
    const [a, b] = await Promise.all([provider(), provider()]);
    assert.deepEqual([a.password, b.password, calls], ['p1', 'p1', 1]);
    now += 50 * 60_000;
    assert.equal((await provider()).password, 'p1', 'still within its life minus the margin');
    now += 6 * 60_000;
    assert.equal((await provider()).password, 'p2', 'asked again 5 minutes before it lapses');
    now += 60 * 60_000;
    fail = true;
    await assert.rejects(provider(), /api down/);
    fail = false;
    assert.equal((await provider()).password, 'p4', 'a failure is not kept');
  });

  it('on AWS, api_token must be a Secrets Manager reference, and the functions may read it', () => {
    const bad = () =>
      deploymentOf(parseConfig(`registries:\n  - {name: q, type: quay, url: "https://quay.io", api_token: {env: QUAY_OAUTH}}\n`, 'aws.yaml'));
    assert.throws(bad, (err: unknown) => err instanceof ConfigError && /registries\[0\]\.api_token: must be \{secret: NAME_OR_ARN\} on AWS/.test(err.issues.join('\n')));
    const good = deploymentOf(parseConfig(`registries:\n  - {name: q, type: quay, url: "https://quay.io", api_token: {secret: team/quay-oauth}}\n`, 'aws.yaml'));
    assert.ok(good.registrySecrets.includes('team/quay-oauth'));
  });
});
