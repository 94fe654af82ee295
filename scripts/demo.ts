// `npm run demo`: a real replication on this machine. Two docker-registry instances on
// loopback, a sample multi-platform image pushed with skopeo, copied by harbor-replicator,
// then copied again to show it is in sync.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { indexLayout, pushLayout } from '../test/support/fixtures.js';
import { manifestDigest } from '../test/support/inspect.js';
import { startRegistry } from '../test/support/registry.js';

const cli = fileURLToPath(new URL('../../bin/harbor-replicator.js', import.meta.url));
const say = (text: string) => process.stdout.write(`\n== ${text}\n`);

const [a, b] = await Promise.all([startRegistry(), startRegistry()]);
try {
  say(`source registry ${a.url}, destination registry ${b.url} (docker-registry 2.8, temp storage)`);
  const layout = await indexLayout(
    [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
    ],
    [{ size: 8 * 1024 * 1024 }, { size: 2 * 1024 * 1024 }],
  );
  await pushLayout(layout, `${a.host}/library/hello:1.0`);
  say(`pushed ${a.host}/library/hello:1.0 with skopeo: a two-platform index ${layout.top.digest}`);

  const args = ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `${a.host}/library/hello:1.0`, `${b.host}/mirror/hello`];
  say(`harbor-replicator ${args.join(' ')}`);
  const first = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  say('the same copy again (nothing to do)');
  const second = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });

  const copied = await manifestDigest(b.url, 'mirror/hello', '1.0');
  say(`destination ${b.host}/mirror/hello:1.0 is ${copied}`);
  const ok = first.status === 0 && second.status === 0 && copied === layout.top.digest;
  say(ok ? 'digests match: replication done' : 'replication FAILED');
  process.exitCode = ok ? 0 : 1;
} finally {
  await Promise.all([a.stop(), b.stop()]);
}
