// Pure functions at the edges of the registry client: reference parsing (Docker's rules),
// challenges, Retry-After, URL redaction, sizes. Everything that crosses the wire is tested
// against real registries in the other files.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../shared/errors.js';
import { parseChallenge } from '../shared/registry/challenge.js';
import { parseErrorBody, parseRetryAfter, redactUrl } from '../shared/registry/errors.js';
import { apiHost, formatReference, parseReference } from '../shared/registry/reference.js';
import { parseSize } from '../shared/util/units.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference follows Docker rules', () => {
  const table: Array<[string, { registry: string; repository: string; tag?: string; digest?: string }]> = [
    ['nginx', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['docker://nginx:1.27', { registry: 'docker.io', repository: 'library/nginx', tag: '1.27' }],
    ['bitnami/redis:7', { registry: 'docker.io', repository: 'bitnami/redis', tag: '7' }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['localhost:5000/a/b/c:v1', { registry: 'localhost:5000', repository: 'a/b/c', tag: 'v1' }],
    ['127.0.0.1:5000/app:1.0', { registry: '127.0.0.1:5000', repository: 'app', tag: '1.0' }],
    ['harbor.example.com/library/busybox', { registry: 'harbor.example.com', repository: 'library/busybox', tag: 'latest' }],
    [`ghcr.io/org/app@${D}`, { registry: 'ghcr.io', repository: 'org/app', digest: D }],
    [`ghcr.io/org/app:1.0@${D}`, { registry: 'ghcr.io', repository: 'org/app', tag: '1.0', digest: D }],
    ['index.docker.io/library/alpine:3', { registry: 'docker.io', repository: 'library/alpine', tag: '3' }],
    ['registry:5000/app', { registry: 'registry:5000', repository: 'app', tag: 'latest' }],
  ];
  for (const [input, want] of table) {
    it(`parses ${input}`, () => assert.deepEqual(parseReference(input), want));
  }

  it('keeps "no tag" visible when asked (a destination takes the source tag)', () => {
    assert.deepEqual(parseReference('127.0.0.1:5000/app', { defaultTag: undefined }), { registry: '127.0.0.1:5000', repository: 'app' });
  });

  for (const bad of ['', 'UPPER/case', 'host:5000/app:bad tag', 'app@sha256:short', 'http://host/app', 'a//b', 'app:-x']) {
    it(`rejects ${JSON.stringify(bad)} with a UsageError`, () => assert.throws(() => parseReference(bad), UsageError));
  }

  it('formats and maps Docker Hub to its API host', () => {
    assert.equal(formatReference(parseReference('nginx')), 'docker.io/library/nginx:latest');
    assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(apiHost('127.0.0.1:5000'), '127.0.0.1:5000');
  });
});

describe('WWW-Authenticate challenges', () => {
  it('parses Bearer with quoted values holding commas', () => {
    const c = parseChallenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"');
    assert.deepEqual(c, {
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'reg', scope: 'repository:a/b:pull,push' },
    });
  });
  it('parses Basic and an insufficient_scope error', () => {
    assert.deepEqual(parseChallenge('Basic realm="test-realm"'), { scheme: 'basic', params: { realm: 'test-realm' } });
    assert.equal(parseChallenge('Bearer realm="r",error="insufficient_scope"')?.params.error, 'insufficient_scope');
    assert.equal(parseChallenge(undefined), undefined);
  });
});

describe('errors and retries', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    assert.equal(parseRetryAfter('1'), 1000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 7_000), 3_000);
    assert.equal(parseRetryAfter('soon'), undefined);
  });
  it('redacts credentials and signatures from URLs', () => {
    const out = redactUrl('https://user:pw@s3.example/blob?X-Amz-Signature=abc&X-Amz-Credential=AKIA&part=1');
    assert.ok(!out.includes('pw') && !out.includes('abc') && !out.includes('AKIA'), out);
    assert.ok(out.includes('part=1'));
  });
  it('parses the distribution error envelope and non-JSON bodies', () => {
    assert.deepEqual(parseErrorBody('{"errors":[{"code":"DENIED","message":"no"}]}'), [{ code: 'DENIED', message: 'no' }]);
    assert.deepEqual(parseErrorBody('<html>bad gateway</html>'), [{ code: 'UNKNOWN', message: '<html>bad gateway</html>' }]);
  });
});

describe('parseSize', () => {
  it('reads binary and decimal units', () => {
    assert.equal(parseSize('10MiB', 'x'), 10 * 1024 * 1024);
    assert.equal(parseSize('10M', 'x'), 10 * 1024 * 1024);
    assert.equal(parseSize('5MB', 'x'), 5_000_000);
    assert.equal(parseSize('1048576', 'x'), 1048576);
  });
  it('names the flag in the error', () => {
    assert.throws(() => parseSize('ten', '--chunk-size'), /--chunk-size: "ten" is not a size/);
    assert.throws(() => parseSize('0', '--chunk-size'), /positive/);
  });
});
