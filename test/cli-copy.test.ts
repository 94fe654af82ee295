// The `harbor-replicator copy` contract as a user drives it: references, flags, credentials
// precedence, --json, exit codes, and credentials never printed.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, type CliResult } from './support/cli.js';
import { htpasswdFile, imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { basic, manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const PASSWORD = 'Pa55-w0rd-never-printed';
const INSECURE = ['--src-tls-verify=false', '--dest-tls-verify=false'];

describe('harbor-replicator copy', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let locked: TestRegistry;
  let app: Layout;
  let other: Layout;
  let emptyDockerConfig: string;

  before(async () => {
    const htpasswd = await htpasswdFile('dave', PASSWORD);
    [src, dst, locked] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ htpasswd })]);
    [app, other] = await Promise.all([imageLayout([{ size: 100_000 }]), imageLayout([{ size: 120_000 }])]);
    await Promise.all([pushLayout(app, `${src.host}/library/app:1.0`), pushLayout(other, `${src.host}/library/other:2.0`)]);
    emptyDockerConfig = await mkdtemp(join(tmpdir(), 'hr-dockercfg-'));
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), locked?.stop()]);
  });

  /** Runs the CLI with no ambient credentials (empty Docker config, no env creds). */
  const cli = (args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> =>
    runCli(args, {
      env: { DOCKER_CONFIG: emptyDockerConfig, HARBOR_REPLICATOR_SRC_CREDS: undefined, HARBOR_REPLICATOR_DEST_CREDS: undefined, ...env },
    });
  const json = (r: CliResult) => JSON.parse(r.stdout.trim()) as Record<string, unknown>;

  it('copies with --json: one JSON object on stdout, progress on stderr, exit 0; then in sync', async () => {
    const r = await cli(['copy', '--json', ...INSECURE, `docker://${src.host}/library/app:1.0`, `${dst.host}/mirror/app:1.0`]);
    assert.equal(r.code, 0, r.stderr);
    const out = json(r);
    assert.deepEqual(Object.keys(out).sort(), ['blobs', 'bytes', 'destination', 'digest', 'referrers', 'seconds', 'source', 'status']);
    assert.deepEqual(out.referrers, { copied: 0, in_sync: 0, failed: 0 }, 'an image without signatures or other referrers');
    assert.equal(out.status, 'copied');
    assert.equal(out.digest, app.top.digest);
    assert.deepEqual(out.blobs, { copied: 2, skipped: 0, mounted: 0 });
    assert.ok((out.bytes as number) > 100_000);
    assert.match(r.stderr, /^plan: 1 manifest\(s\), 2 blob\(s\)/m, 'plain progress lines when stderr is not a TTY');
    assert.equal(await manifestDigest(dst.url, 'mirror/app', '1.0'), app.top.digest);

    const again = await cli(['copy', '--json', ...INSECURE, `${src.host}/library/app:1.0`, `${dst.host}/mirror/app:1.0`]);
    assert.equal(again.code, 0);
    assert.equal(json(again).status, 'in_sync');
  });

  it('a destination without tag takes the source tag; repo:tag@digest copies the digest', async () => {
    const r = await cli(['copy', '--json', ...INSECURE, `${src.host}/library/app:1.0`, `${dst.host}/notag/app`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r).destination, `${dst.host}/notag/app:1.0`);
    assert.equal(await manifestDigest(dst.url, 'notag/app', '1.0'), app.top.digest);

    // The tag says app:1.0 but the digest names the other image: the digest wins.
    const d = await cli(['copy', '--json', ...INSECURE, `${src.host}/library/other:1.0@${other.top.digest}`, `${dst.host}/pinned/x:v1`]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(await manifestDigest(dst.url, 'pinned/x', 'v1'), other.top.digest);
  });

  it('--no-override skips a tag that points elsewhere (exit 0); override replaces it', async () => {
    await cli(['copy', ...INSECURE, `${src.host}/library/other:2.0`, `${dst.host}/over/app:1.0`]);
    const skipped = await cli(['copy', '--json', '--no-override', ...INSECURE, `${src.host}/library/app:1.0`, `${dst.host}/over/app:1.0`]);
    assert.equal(skipped.code, 0);
    assert.equal(json(skipped).status, 'skipped');
    assert.equal(await manifestDigest(dst.url, 'over/app', '1.0'), other.top.digest);
    const replaced = await cli(['copy', '--json', '--override', ...INSECURE, `${src.host}/library/app:1.0`, `${dst.host}/over/app:1.0`]);
    assert.equal(json(replaced).status, 'copied');
    assert.equal(await manifestDigest(dst.url, 'over/app', '1.0'), app.top.digest);
  });

  it('--chunk-size turns on chunked upload', async () => {
    const r = await cli(['copy', '--json', '--chunk-size', '32KiB', ...INSECURE, `${src.host}/library/app:1.0`, `${dst.host}/chunks/app:1.0`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await manifestDigest(dst.url, 'chunks/app', '1.0'), app.top.digest);
  });

  it('a failed copy exits 1 with one line naming the reference and the registry code', async () => {
    const r = await cli(['copy', '--json', ...INSECURE, `${src.host}/library/app:nope`, `${dst.host}/x/app:1.0`]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`copy ${src.host}/library/app:nope -> ${dst.host}/x/app:1.0 failed: MANIFEST_UNKNOWN`));
    assert.equal(json(r).status, 'failed');
  });

  it('bad usage exits 2 and names the bad input', async () => {
    const bad = await cli(['copy', `${src.host}/Library/App:1.0`, `${dst.host}/x`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /lowercase/);
    const size = await cli(['copy', '--chunk-size', 'lots', 'a/b', 'c/d']);
    assert.equal(size.code, 2);
    assert.match(size.stderr, /--chunk-size: "lots" is not a size/);
    const tls = await cli(['copy', '--src-tls-verify=maybe', 'a/b', 'c/d']);
    assert.equal(tls.code, 2);
  });

  it('TLS is verified by default: a plain-HTTP registry is refused unless tls-verify=false', async () => {
    const r = await cli(['copy', `${src.host}/library/app:1.0`, `${dst.host}/tls/app:1.0`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not speak HTTPS/);
  });

  describe('credentials', () => {
    const target = () => `${locked.host}/team/app:1.0`;
    const auth = () => basic('dave', PASSWORD);

    it('--dest-creds is used, and wins over the environment', async () => {
      const ok = await cli(['copy', ...INSECURE, '--dest-creds', `dave:${PASSWORD}`, `${src.host}/library/app:1.0`, target()], {
        HARBOR_REPLICATOR_DEST_CREDS: 'dave:wrong',
      });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(await manifestDigest(locked.url, 'team/app', '1.0', auth()), app.top.digest);
      const wins = await cli(['copy', ...INSECURE, '--dest-creds', 'dave:wrong', `${src.host}/library/app:1.0`, target()], {
        HARBOR_REPLICATOR_DEST_CREDS: `dave:${PASSWORD}`,
      });
      assert.equal(wins.code, 1, 'the flag is used even when the environment is right');
      assert.match(wins.stderr, /UNAUTHORIZED/);
    });

    it('HARBOR_REPLICATOR_DEST_CREDS is used when no flag is given, and wins over Docker config', async () => {
      const cfg = await mkdtemp(join(tmpdir(), 'hr-dockercfg-'));
      await writeFile(join(cfg, 'config.json'), JSON.stringify({ auths: { [locked.host]: { auth: Buffer.from('dave:wrong').toString('base64') } } }));
      const r = await cli(['copy', '--json', ...INSECURE, `${src.host}/library/other:2.0`, `${locked.host}/env/app:1.0`], {
        HARBOR_REPLICATOR_DEST_CREDS: `dave:${PASSWORD}`,
        DOCKER_CONFIG: cfg,
      });
      assert.equal(r.code, 0, r.stderr);
    });

    it("Docker's config.json auths are used last", async () => {
      const cfg = await mkdtemp(join(tmpdir(), 'hr-dockercfg-'));
      await writeFile(
        join(cfg, 'config.json'),
        JSON.stringify({ auths: { [`http://${locked.host}`]: { auth: Buffer.from(`dave:${PASSWORD}`).toString('base64') } } }),
      );
      const r = await cli(['copy', '--json', ...INSECURE, `${src.host}/library/app:1.0`, `${locked.host}/dockercfg/app:1.0`], { DOCKER_CONFIG: cfg });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await manifestDigest(locked.url, 'dockercfg/app', '1.0', auth()), app.top.digest);
    });

    it('credentials are never printed: not in --json, not in --debug, not on failure', async () => {
      const b64 = Buffer.from(`dave:${PASSWORD}`).toString('base64');
      const runs = [
        await cli(['copy', '--json', '--debug', ...INSECURE, '--dest-creds', `dave:${PASSWORD}`, `${src.host}/library/app:1.0`, `${locked.host}/p/app:1.0`]),
        await cli(['copy', '--json', '--debug', ...INSECURE, '--src-creds', `dave:${PASSWORD}`, `${locked.host}/nope/app:1.0`, `${dst.host}/p/app:1.0`]),
        await cli(['copy', '--debug', ...INSECURE, '--dest-creds', `dave:${PASSWORD}x`, `${src.host}/library/app:1.0`, `${locked.host}/p/app:2.0`]),
      ];
      assert.equal(runs[0]!.code, 0);
      assert.match(runs[0]!.stderr, /^debug: PUT http:\/\/127\.0\.0\.1:\d+\/v2\/p\/app\/manifests\/1\.0 -> 201/m, 'debug logs requests');
      assert.equal(runs[1]!.code, 1);
      assert.equal(runs[2]!.code, 1);
      for (const r of runs) {
        const all = r.stdout + r.stderr;
        assert.ok(!all.includes(PASSWORD), 'password printed');
        assert.ok(!all.includes(b64), 'basic header printed');
      }
    });
  });
});
