// API-managed credentials below the HTTP layer (issue 10, item 1): their own types, parsed apart
// from the config file's, resolved by their own function (no environment, file or Docker config
// branch to reach), literal secrets sealed with AES-256-GCM bound to their registry.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { SecretStore } from '../shared/rules/ports.js';
import { parseApiRegistryBody, parseStoredApiRegistry, storedValue } from '../shared/rules/api-registry.js';
import { ApiCredentialError, ApiSecrets } from '../shared/rules/api-secrets.js';
import { ConfigView } from '../shared/rules/config-view.js';
import { parseConfig } from '../shared/rules/load-config.js';
import { credentialsOf } from '../shared/rules/registry-endpoint.js';
import { parseEncryptionKey, seal, unseal } from '../shared/rules/sealed-secret.js';
import type { ConfigStore } from '../shared/rules/ports.js';

/** A ConfigStore in memory. */
function memoryStore(entries: Record<string, Record<string, unknown>> = {}): ConfigStore {
  const m = new Map(Object.entries(entries));
  return {
    listEntries: async (kind) => [...m].filter(([k]) => k.startsWith(`${kind}#`)).map(([, v]) => v),
    getEntry: async (kind, name) => m.get(`${kind}#${name}`),
    putEntry: async (kind, name, value, mode) => {
      if ((mode === 'create') === m.has(`${kind}#${name}`)) return false;
      m.set(`${kind}#${name}`, value);
      return true;
    },
    deleteEntry: async (kind, name) => m.delete(`${kind}#${name}`),
  };
}

describe('sealed secrets (AES-256-GCM)', () => {
  it('open with their key and context only; a fresh IV each time', () => {
    const key = randomBytes(32);
    const a = seal(key, 'robot-pw', 'registries/a');
    const b = seal(key, 'robot-pw', 'registries/a');
    assert.notEqual(a.iv, b.iv);
    assert.notEqual(a.data, b.data);
    assert.equal(unseal(key, a, 'registries/a'), 'robot-pw');
    assert.throws(() => unseal(key, a, 'registries/b'), /does not decrypt/, 'copied into another entry it does not open');
    assert.throws(() => unseal(randomBytes(32), a, 'registries/a'), /does not decrypt/);
    assert.throws(() => unseal(key, { ...a, data: Buffer.from('x').toString('base64') }, 'registries/a'), /does not decrypt/);
  });

  it('api.encryption_key: 32 bytes in base64, or an error that never shows the value', () => {
    const k = randomBytes(32);
    assert.deepEqual(parseEncryptionKey(`${k.toString('base64')}\n`), k);
    assert.deepEqual(parseEncryptionKey(k.toString('base64url')), k);
    for (const bad of [randomBytes(16).toString('base64'), 'not base64 at all!', '']) {
      assert.throws(() => parseEncryptionKey(bad), (err: Error) => /must be 32 random bytes in base64/.test(err.message) && (bad === '' || !err.message.includes(bad)));
    }
  });
});

describe('API credentials', () => {
  it('the stored forms that could read the environment, a file or Docker config are refused, named by field', () => {
    const base = { name: 'r', type: 'docker-registry', url: 'https://r.example' };
    assert.match(parseStoredApiRegistry({ ...base, credential: { username: 'u', password: { env: 'HOME' } } }).invalid!, /^credential\.password: references of kind env/);
    assert.match(parseStoredApiRegistry({ ...base, credential: { username: 'u', password: { file: '/etc/passwd' } } }).invalid!, /^credential\.password: references of kind file/);
    assert.match(parseStoredApiRegistry({ ...base, credential: { docker_config: true } }).invalid!, /^credential\.docker_config/);
    assert.match(parseStoredApiRegistry({ ...base, ca_file: '/etc/shadow' }).invalid!, /^ca_file/);
    const ok = parseStoredApiRegistry({ ...base, credential: { username: 'u', password: { secret: 'p/x' } } });
    assert.equal(ok.invalid, undefined);
    assert.equal(ok.registry?.credential, undefined, 'the registry part never carries the credential');
    assert.match((parseApiRegistryBody({ ...base, credential: { type: 'basic', access_key: 'a', access_secret: 'b', extra: 1 } }) as { problem: string }).problem, /^credential: Unrecognized key/);
  });

  it('ApiSecrets: references under the prefix or allowed only; literals sealed (serve) or written under the prefix (AWS); nothing written before every check passed', async () => {
    const reader: SecretStore = { get: async (name) => `value-of-${name}` };
    const written: Array<[string, string]> = [];
    const writer = { put: async (name: string, value: string) => void written.push([name, value]) };
    const aws = new ApiSecrets({ reader, writer, prefix: 'hr/api/', allowed: ['team/x'] });
    await assert.rejects(aws.keep('r', { username: 'u', password: { secret: 'prod/other' } }, undefined), ApiCredentialError);
    await assert.rejects(aws.keep('r', { username: 'u', password: { secret: 'hr/api/' } }, undefined), ApiCredentialError, 'the prefix itself is no secret of it');
    assert.deepEqual(await aws.keep('r', { username: 'u', password: { secret: 'team/x' } }, undefined), { username: 'u', password: { secret: 'team/x' } });
    await assert.rejects(aws.keep('r', { type: 'basic', access_key: 'a' }, undefined), /access_secret: is required/);
    assert.deepEqual(written, []);
    const stored = await aws.keep('r', { type: 'basic', access_key: 'a', access_secret: 'lit' }, undefined);
    assert.deepEqual(stored, { type: 'basic', access_key: 'a', access_secret: { secret: 'hr/api/r' } });
    assert.deepEqual(written, [['hr/api/r', 'lit']]);
    assert.deepEqual(await aws.resolve('r', stored!), { username: 'a', password: 'value-of-hr/api/r' });
    // A stored reference outside the rules (written by hand) is not read.
    await assert.rejects(aws.resolve('r', { username: 'u', password: { secret: 'prod/db' } }), /SECRET_REFUSED|neither under/);

    const key = randomBytes(32);
    const serve = new ApiSecrets({ encryptionKey: key });
    const sealed = await serve.keep('r', { type: 'basic', access_key: 'a', access_secret: 'lit' }, undefined);
    assert.ok(sealed && 'type' in sealed && 'sealed' in sealed.access_secret);
    assert.ok(!JSON.stringify(sealed).includes('lit"'));
    assert.deepEqual(await serve.resolve('r', sealed), { username: 'a', password: 'lit' });
    assert.deepEqual(await serve.keep('r', { type: 'basic', access_key: 'b' }, sealed), { ...sealed, access_key: 'b' }, 'a replace without the secret keeps it');
    await assert.rejects(new ApiSecrets().keep('r', { type: 'basic', access_key: 'a', access_secret: 'lit' }, undefined), /need api\.encryption_key/);
  });

  it('in the merged config an API registry has no credential: the config file resolution cannot reach one, even by mistake', async () => {
    const file = parseConfig('registries: []\n', 'f.yaml');
    const store = memoryStore({
      'registry#lit': storedValue({ name: 'lit', type: 'docker-registry', url: 'https://r.example', insecure: false, max_concurrency: 8, create_repositories: false }, { username: 'u', password: { secret: 'hr/api/lit' } }),
      'registry#old': { name: 'old', type: 'docker-registry', url: 'https://r.example', credential: { username: 'u', password: { env: 'HOME' } } },
    });
    const view = new ConfigView(file, store, { apiSecrets: new ApiSecrets({ prefix: 'hr/api/', reader: { get: async () => 'pw' } }) });
    await view.refresh();
    for (const name of ['lit', 'old']) {
      const reg = view.loaded.registry(name);
      assert.equal(reg.credential, undefined, name);
      assert.equal(await credentialsOf(reg, name, { env: { HOME: 'leaked' } }), undefined, name);
    }
    assert.deepEqual(await view.apiRegistry('lit')!.credentials(), { username: 'u', password: 'pw' });
    await assert.rejects(view.apiRegistry('old')!.credentials(), /REGISTRY_INVALID|is invalid and is not used/);
  });
});
