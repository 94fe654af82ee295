// One retry vocabulary: `isTransient` decides for every layer (request, source stream,
// destination upload, task, plan job). The cases where the layers used to disagree are here,
// each with the answer that now holds everywhere.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DigestMismatchError, ReplicatorError, StoppedError } from '../shared/errors.js';
import { HostStates } from '../shared/registry/backoff.js';
import { RegistryClient } from '../shared/registry/client.js';
import { isTransient, isTransientStatus, RegistryError } from '../shared/registry/errors.js';
import type { HttpEvent } from '../shared/registry/http.js';
import { InvalidNameError } from '../shared/registry/names.js';
import { freePort } from './support/registry.js';

const url = 'http://127.0.0.1:1/v2/';
const network = (code: string) => RegistryError.fromNetwork('GET', url, Object.assign(new Error(code), { code }));
const answered = (status: number, codes: string[] = []) => new RegistryError({ status, method: 'GET', url, errors: codes.map((code) => ({ code })) });

describe('one retry vocabulary', () => {
  it('statuses: 408, 429 and 5xx except 501 are transient; every other answer is final', () => {
    const transient = [408, 429, 500, 502, 503, 504, 507, 520, 599];
    const final = [400, 401, 403, 404, 409, 425, 501];
    assert.deepEqual(transient.filter((s) => !isTransientStatus(s)), []);
    assert.deepEqual(final.filter((s) => isTransientStatus(s)), []);
    // Changed: 425 was retried by the request layer; 507 and 520 were final.
    assert.equal(isTransient(answered(425)), false);
    assert.equal(isTransient(answered(507)), true);
    assert.equal(isTransient(answered(520)), true);
  });

  it("registry codes: TOOMANYREQUESTS and UNAVAILABLE whatever the status; a blob not linked yet is final", () => {
    assert.equal(isTransient(answered(400, ['TOOMANYREQUESTS'])), true);
    assert.equal(isTransient(answered(400, ['UNAVAILABLE'])), true);
    // Changed: the task layer used to run a task again on these.
    for (const code of ['MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN', 'BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID']) {
      assert.equal(isTransient(answered(400, [code])), false, code);
    }
  });

  it('connections: refused, reset, cut short, timed out and DNS "try again" are transient; TLS, unknown names, unreachable networks final', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ERR_STREAM_PREMATURE_CLOSE']) {
      assert.equal(isTransient(network(code)), true, code);
      assert.equal(isTransient(Object.assign(new Error(code), { code })), true, `${code} outside a request (a body stream)`);
    }
    // Changed: ECONNREFUSED was final for a request but retried by the task and upload layers;
    // a final network code was retried by the task layer (any answer-less failure was), and the
    // upload layer took every UND_ERR_* code for transient.
    for (const code of ['ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']) {
      assert.equal(isTransient(network(code)), false, code);
      assert.equal(isTransient(Object.assign(new Error(code), { code })), false, `${code} outside a request`);
    }
  });

  it("our own failures are final: content, names, limits, a stop", () => {
    for (const err of [new DigestMismatchError('sha256:a', 'sha256:b', 'x'), new InvalidNameError('tag', '../x'), new ReplicatorError('MANIFEST_LIMIT', 'x'), new StoppedError()]) {
      assert.equal(isTransient(err), false, err.code);
    }
  });

  it('the request layer now retries a refused connection, with the per-host backoff, within its attempts', async () => {
    const port = await freePort(); // nothing listens there
    const events: HttpEvent[] = [];
    const client = new RegistryClient({
      host: `127.0.0.1:${port}`,
      scheme: 'http',
      hosts: new HostStates({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 10, maxRetryAfterMs: 100 }),
      onEvent: (e) => events.push(e),
    });
    await assert.rejects(client.ping(), (err: RegistryError) => err.retryable && /connection refused/.test(err.message));
    assert.equal(events.filter((e) => e.kind === 'retry').length, 2, 'three attempts in all');
    // Test Connection asks once: a person is waiting for the answer.
    events.length = 0;
    await assert.rejects(client.ping(undefined, { once: true }));
    assert.equal(events.filter((e) => e.kind === 'retry').length, 0);
  });
});
