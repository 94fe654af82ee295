// `config check` and `run` as a user drives them: a config file with Harbor's field names,
// real registries, a Harbor API stand-in; the plan printed by --dry-run, then really copied.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/cli.js';
import { imageLayout, pushLayout, type Layout } from './support/fixtures.js';
import { startHarborFake, type HarborFake } from './support/harbor-fake.js';
import { manifestDigest } from './support/inspect.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

describe('harbor-replicator config check and run', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let harborBack: TestRegistry;
  let harbor: HarborFake;
  let app: Layout;
  let dir: string;
  let config: string;

  before(async () => {
    [src, dst, harborBack] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
    app = await imageLayout([{ size: 50_000 }]);
    for (const ref of ['library/nginx:1.27', 'library/nginx:1.26', 'library/nginx:1.27-rc1', 'library/redis:7', 'tools/a/b/cli:1', 'other/x:1']) {
      await pushLayout(app, `${src.host}/${ref}`);
    }
    harbor = await startHarborFake(harborBack, { user: 'admin', password: 'Harbor12345', projects: [] });
    dir = await mkdtemp(join(tmpdir(), 'hr-cli-rules-'));
    config = join(dir, 'replicator.yaml');
    await writeFile(
      config,
      `# registries and rules use Harbor's field names
registries:
  - name: hq
    type: docker-registry
    url: http://${src.host}
  - name: branch
    type: docker-registry
    url: http://${dst.host}
  - name: dr-harbor
    type: harbor
    url: ${harbor.url}
    credential: {username: admin, password: {env: DR_HARBOR_PASSWORD}}
rules:
  - name: mirror
    src_registry: hq
    dest_registry: branch
    dest_namespace: mirror
    dest_namespace_replace_count: 1
    filters:
      - {type: name, value: "{library,tools}/**"}
      - {type: tag, value: "*-rc*", decoration: excludes}
  - name: to-harbor
    src_registry: hq
    dest_registry: dr-harbor
    dest_namespace: dr
    filters:
      - {type: name, value: library/redis}
    trigger: {type: scheduled, trigger_settings: {cron: "0 0 3 * * *", timezone: Europe/Paris}}
`,
    );
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), harbor?.stop(), harborBack?.stop()]);
  });

  const env = { DR_HARBOR_PASSWORD: 'Harbor12345', HARBOR_REPLICATOR_CONFIG: undefined };

  it('config check: one line per rule, no secret, exit 0', async () => {
    const r = await runCli(['config', 'check', '--config', config], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /valid; 3 registries, 2 rule\(s\)/);
    assert.match(r.stdout, /^rule mirror: hq -> branch; namespace "mirror" \(replace count 1\); filters name "\{library,tools\}\/\*\*", tag "\*-rc\*" excluded; manual; override$/m);
    assert.match(r.stdout, /^rule to-harbor: hq -> dr-harbor; .*scheduled "0 0 3 \* \* \*" Europe\/Paris/m);
    assert.ok(!r.stdout.includes('Harbor12345') && !r.stderr.includes('Harbor12345'));
  });

  it('config check: an unresolvable secret or a bad field fails with its path, exit 2', async () => {
    const missing = await runCli(['config', 'check', '--config', config], { env: { DR_HARBOR_PASSWORD: undefined } });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /registries\[2\]\.credential\.password: environment variable DR_HARBOR_PASSWORD is not set/);

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, `registries: [{name: a, type: docker-registry, url: "http://a"}]\nrules: [{name: r, src_registry: a, dest_registry: a, filters: [{type: tag, value: x, decoration: include}]}]\n`);
    for (const args of [['config', 'check', '--config', bad], ['run', 'r', '--config', bad, '--dry-run']]) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /rules\[0\]\.filters\[0\]\.decoration: Invalid option: expected one of "matches"\|"excludes" \(got "include"\)/);
      assert.equal(r.stdout, '', 'nothing happens on a bad config');
    }

    // A YAML alias bomb is a config error like any other (it used to escape as an internal error, exit 1).
    const bomb = join(dir, 'bomb.yaml');
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    await writeFile(bomb, `${levels.join('\n')}\n`);
    for (const args of [['config', 'check', '--config', bomb], ['run', 'r', '--config', bomb], ['serve', '--config', bomb, '--data-dir', join(dir, 'bomb-state')]]) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /invalid config .*bomb\.yaml:\n {2}\(top level\): Excessive alias count/, args.join(' '));
    }
  });

  it('run --dry-run prints source -> destination per artifact and copies nothing; --verbose says what was left out', async () => {
    const r = await runCli(['run', 'mirror', '--config', config, '--dry-run', '--verbose'], { env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const plan = lines.filter((l) => l.includes(' -> ')).map((l) => l.replace(/@sha256:[0-9a-f]{64}/, ''));
    assert.deepEqual(plan.sort(), [
      `${src.host}/library/nginx:1.26 -> ${dst.host}/mirror/nginx:1.26`,
      `${src.host}/library/nginx:1.27 -> ${dst.host}/mirror/nginx:1.27`,
      `${src.host}/library/redis:7 -> ${dst.host}/mirror/redis:7`,
      `${src.host}/tools/a/b/cli:1 -> ${dst.host}/mirror/a/b/cli:1`,
    ]);
    assert.ok(lines.includes(`skip ${src.host}/library/nginx:1.27-rc1: tag 1.27-rc1 excluded by tag filter "*-rc*" (excludes)`), r.stdout);
    assert.ok(lines.includes(`skip ${src.host}/other/x: repository does not match name filter "{library,tools}/**"`), r.stdout);
    assert.match(r.stderr, /4 to copy, 2 left out, 0 error\(s\); nothing copied \(dry run\)/);
    assert.equal(await manifestDigest(dst.url, 'mirror/nginx', '1.27'), undefined, 'nothing copied');
  });

  it('run --dry-run --json prints the plan as one JSON object', async () => {
    const r = await runCli(['run', 'mirror', '--config', config, '--dry-run', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { rule: string; items: Array<{ source: { digest: string }; destination: { repository: string; tags: string[] } }>; excluded: unknown[]; counts: Record<string, number> };
    assert.equal(plan.rule, 'mirror');
    assert.equal(plan.items.length, 4);
    assert.ok(plan.items.every((i) => i.source.digest === app.top.digest));
    assert.deepEqual(plan.counts, { items: 4, excluded: 2, errors: 0 });
  });

  it('run copies the plan (same digests at the destination), and a second run finds everything in sync', async () => {
    const r = await runCli(['run', 'mirror', '--config', config, '--data-dir', join(dir, 'state')], { env });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const [repo, tag] of [['mirror/nginx', '1.27'], ['mirror/nginx', '1.26'], ['mirror/redis', '7'], ['mirror/a/b/cli', '1']] as const) {
      assert.equal(await manifestDigest(dst.url, repo, tag), app.top.digest, `${repo}:${tag}`);
    }
    assert.equal(await manifestDigest(dst.url, 'mirror/nginx', '1.27-rc1'), undefined);
    assert.match(r.stdout, /^execution \d+ Succeed: 4 task\(s\): 4 succeed, 0 failed/m);
    assert.match(r.stderr, /planned 4 task\(s\): 4 to copy, 0 already in sync, 0 error\(s\), 2 left out by filters/);
    const again = await runCli(['run', 'mirror', '--config', config, '--data-dir', join(dir, 'state')], { env });
    assert.equal(again.code, 0);
    assert.match(again.stderr, /planned 4 task\(s\): 0 to copy, 4 already in sync/);
  });

  it('run into a Harbor creates the missing project first (POST /api/v2.0/projects), then copies', async () => {
    const r = await runCli(['run', 'to-harbor', '--config', config, '--data-dir', join(dir, 'state')], { env });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.ok(harbor.projects.has('dr'), 'project dr created');
    assert.equal(await manifestDigest(harborBack.url, 'dr/redis', '7'), app.top.digest);
  });

  it("config check: speed is Harbor's Kbps, shown as such, with a note for rules that set one", async () => {
    const paced = join(dir, 'paced.yaml');
    await writeFile(paced, `registries: [{name: a, type: docker-registry, url: "http://a"}]\nrules: [{name: r, src_registry: a, dest_registry: a, dest_namespace: x, speed: 8192}]\n`);
    const r = await runCli(['config', 'check', '--config', paced], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rule r: .*speed 8192 Kbps \(1\.05 MB\/s per task\)/);
    assert.match(r.stderr, /rules\[0\]\.speed: speed is read in Kbps \(kilobits per second\), Harbor's unit; versions before 0\.2 read it as KB\/s/);
  });

  it('an unknown rule is a usage error naming the rules there are', async () => {
    const r = await runCli(['run', 'nope', '--config', config, '--dry-run'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no rule named "nope" in .* \(rules: "mirror", "to-harbor"\)/);
  });
});
