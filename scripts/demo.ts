// `npm run demo`: a real replication on this machine. Two docker-registry instances on
// loopback, sample images pushed with skopeo, then a rule (name filter, tag exclude, flattening)
// run by harbor-replicator; the execution and its tasks are printed from the history.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageLayout, indexLayout, pushLayout } from '../test/support/fixtures.js';
import { manifestDigest } from '../test/support/inspect.js';
import { startRegistry } from '../test/support/registry.js';

const cli = fileURLToPath(new URL('../../bin/harbor-replicator.js', import.meta.url));
const say = (text: string) => process.stdout.write(`\n== ${text}\n`);
const MiB = 1024 * 1024;

const work = await mkdtemp(join(tmpdir(), 'harbor-replicator-demo-'));
const [hq, branch] = await Promise.all([startRegistry(), startRegistry()]);
try {
  say(`"headquarters" registry ${hq.url} and "branch" registry ${branch.url} (docker-registry 2.8, temp storage)`);
  const web = await indexLayout(
    [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
    ],
    [{ size: 4 * MiB }, { size: 1 * MiB }],
  );
  const api = await imageLayout([{ size: 2 * MiB }, { size: 512 * 1024 }]);
  const pushes: Array<[typeof web, string]> = [
    [web, 'team/frontend/web:1.0'],
    [web, 'team/frontend/web:1.1'],
    [web, 'team/frontend/web:1.2-rc1'],
    [api, 'team/backend/api:2.3'],
    [api, 'sandbox/experiment:latest'],
  ];
  for (const [layout, ref] of pushes) await pushLayout(layout, `${hq.host}/${ref}`);
  say(`pushed with skopeo: ${pushes.map(([, r]) => r).join(', ')}`);

  const config = join(work, 'replicator.yaml');
  await writeFile(
    config,
    `registries:
  - {name: hq, type: docker-registry, url: "http://${hq.host}"}
  - {name: branch, type: docker-registry, url: "http://${branch.host}"}
rules:
  - name: team-to-branch
    src_registry: hq
    dest_registry: branch
    dest_namespace: mirror            # team/frontend/web -> mirror/frontend/web
    dest_namespace_replace_count: 1
    filters:
      - {type: name, value: "team/**"}                       # not sandbox/*
      - {type: tag, value: "*-rc*", decoration: excludes}    # no release candidates
`,
  );
  say(`rule team-to-branch (${config}): name "team/**", tags "*-rc*" excluded, flattened under mirror/`);
  const dataDir = join(work, 'state');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit', env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });

  say(`harbor-replicator run team-to-branch --config replicator.yaml --data-dir ${dataDir}`);
  const first = run('run', 'team-to-branch', '--config', config, '--data-dir', dataDir);
  say('the same rule again: every tag is already in sync (one HEAD each, nothing copied)');
  const second = run('run', 'team-to-branch', '--config', config, '--data-dir', dataDir);

  say('harbor-replicator executions list');
  run('executions', 'list', '--data-dir', dataDir);
  say('harbor-replicator tasks 1');
  run('tasks', '1', '--data-dir', dataDir);

  const checks = await Promise.all([
    manifestDigest(branch.url, 'mirror/frontend/web', '1.0'),
    manifestDigest(branch.url, 'mirror/backend/api', '2.3'),
    manifestDigest(branch.url, 'mirror/frontend/web', '1.2-rc1'),
  ]);
  const ok = first.status === 0 && second.status === 0 && checks[0] === web.top.digest && checks[1] === api.top.digest && checks[2] === undefined;
  say(ok ? 'digests at the branch equal the headquarters\' (rc tag left out): replication done' : 'replication FAILED');
  process.exitCode = ok ? 0 : 1;
} finally {
  await Promise.all([hq.stop(), branch.stop()]);
  await rm(work, { recursive: true, force: true });
}
