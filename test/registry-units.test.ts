// Pure functions at the edges of the registry client: reference parsing (Docker's rules),
// challenges, Retry-After, URL redaction, a registry's text in errors, URL paths from names,
// pagination bounds, sizes. Everything that crosses the wire is tested against real registries
// in the other files.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../shared/errors.js';
import { parseChallenge } from '../shared/registry/challenge.js';
import { parseErrorBody, parseRetryAfter, redactUrl, remoteText } from '../shared/registry/errors.js';
import { PageWalk } from '../shared/registry/pagination.js';
import { v2Url } from '../shared/registry/urls.js';
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
  it('keeps only the code and 200 escaped characters of errors[].message; nothing of other bodies', () => {
    assert.deepEqual(parseErrorBody('{"errors":[{"code":"DENIED","message":"no","detail":{"secret":1}}]}'), [{ code: 'DENIED', message: 'no' }]);
    assert.deepEqual(parseErrorBody('<html>bad gateway</html>'), []);
    assert.deepEqual(parseErrorBody('{"error":"invalid_grant","message":"internal hostname db-7"}'), [], "a token server's body");
    assert.deepEqual(parseErrorBody('{"errors":[{"code":"x\\ny","message":"a\\nb"}]}'), [{ code: 'UNKNOWN', message: 'a\\nb' }]);
    const long = parseErrorBody(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `${'x'.repeat(199)}\n${'y'.repeat(500)}` }] }));
    assert.equal(long[0]!.message, 'x'.repeat(199), 'an escape is never cut in half');
  });

  it('remoteText escapes what could forge a log line or hide text, and cuts the escaped text', () => {
    assert.equal(remoteText('a"b\\c\nd\r\u001b[31m\u2028\u202e'), 'a\\"b\\\\c\\nd\\r\\u001b[31m\\u2028\\u202e');
    assert.equal(remoteText('z'.repeat(300)).length, 200);
    assert.equal(remoteText('ok: manifest unknown'), 'ok: manifest unknown');
  });
});

describe('request paths from names', () => {
  const origin = new URL('https://reg.example:5000');
  it('encodes each segment and keeps a digest readable', () => {
    assert.equal(v2Url(origin, 'team/app', ['manifests', D]).href, `https://reg.example:5000/v2/team/app/manifests/${D}`);
    assert.equal(v2Url(origin, 'team/app', ['manifests', 'a?b']).href, 'https://reg.example:5000/v2/team/app/manifests/a%3Fb');
    assert.equal(v2Url(origin, 'team/app', ['blobs', 'uploads'], true).pathname, '/v2/team/app/blobs/uploads/');
  });
  it('refuses an invalid repository and dot segments before building anything', () => {
    assert.throws(() => v2Url(origin, '../../api', ['manifests', '1']), { code: 'INVALID_NAME' });
    assert.throws(() => v2Url(origin, 'team/app', ['manifests', '..']));
  });
});

describe('pagination bounds (PageWalk)', () => {
  const u = (s: string) => new URL(s, 'http://reg.example');
  it('follows pages that move forward, and ends', () => {
    const walk = new PageWalk('reg.example', 'catalog', 10);
    assert.equal(walk.next(u('/v2/_catalog?n=2'), u('/v2/_catalog?n=2&last=b'))?.search, '?n=2&last=b');
    assert.equal(walk.next(u('/v2/_catalog?n=2&last=b'), u('/v2/_catalog?last=d&n=2'))?.search, '?last=d&n=2');
    assert.equal(walk.next(u('/v2/_catalog?last=d&n=2'), undefined), undefined);
  });
  it('stops a page named twice (whatever the order of its parameters), a cursor that does not advance, and at max_pages', () => {
    assert.throws(() => new PageWalk('reg.example', 'catalog', 10).next(u('/v2/_catalog?n=2&a=1'), u('/v2/_catalog?a=1&n=2')), {
      code: 'PAGINATION_LOOP',
      message: /^reg\.example catalog: pagination stopped: page 2 repeats a page already read$/,
    });
    assert.throws(() => new PageWalk('reg.example', 'team/app tags', 10).next(u('/v2/team/app/tags/list?last=m'), u('/v2/team/app/tags/list?last=c')), {
      code: 'PAGINATION_LOOP',
      message: /team\/app tags: .*cursor does not move forward/,
    });
    const walk = new PageWalk('reg.example', 'projects', 3);
    walk.next(u('/p?page=1'), u('/p?page=2'));
    walk.next(u('/p?page=2'), u('/p?page=3'));
    assert.throws(() => walk.next(u('/p?page=3'), u('/p?page=4')), { code: 'PAGINATION_LOOP', message: /more than 3 pages \(limits\.max_pages\)/ });
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
