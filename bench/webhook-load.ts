// `npm run bench` (third part): a bounded burst of 500 Harbor webhook deliveries to `serve` over
// loopback, 50 in flight; then 100 of them delivered again. Prints the acknowledgement latency
// (p50/p99) and checks that every delivery made exactly one execution and that all of them end.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import { imageLayout, pushLayout } from '../test/support/fixtures.js';
import { freePort, startRegistry } from '../test/support/registry.js';

const CLI = fileURLToPath(new URL('../../bin/harbor-replicator.js', import.meta.url));
const DELIVERIES = 500;
const IN_FLIGHT = 50;
const AUTH = 'Bearer load-test-secret';
const TOKEN = 'load-test-token';

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hr-load-'));
  const [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  const port = await freePort();
  const layout = await imageLayout([{ size: 10_000 }]);
  await pushLayout(layout, `${src.host}/library/app:1.0`);
  const config = join(work, 'replicator.yaml');
  await writeFile(
    config,
    `registries:
  - {name: harbor, type: docker-registry, url: "http://${src.host}"}
  - {name: branch, type: docker-registry, url: "http://${dst.host}"}
rules:
  - {name: on-push, src_registry: harbor, dest_registry: branch, trigger: {type: event_based}}
webhook: {auth_header: {env: WEBHOOK_AUTH}}
api: {token: {env: API_TOKEN}}
`,
  );
  const child = spawn(process.execPath, [CLI, 'serve', '--config', config, '--listen', `127.0.0.1:${port}`, '--data-dir', join(work, 'state')], {
    env: { ...process.env, WEBHOOK_AUTH: AUTH, API_TOKEN: TOKEN, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/healthz`)).ok) break;
      } catch {
        if (i > 200) throw new Error('serve did not start');
      }
      await sleep(50);
    }
    const payload = (i: number) => ({
      type: 'PUSH_ARTIFACT',
      occur_at: 1_700_000_000 + i,
      operator: 'admin',
      event_data: {
        resources: [{ digest: layout.top.digest, tag: '1.0', resource_url: `${src.host}/library/app:1.0` }],
        repository: { name: 'app', namespace: 'library', repo_full_name: 'library/app', repo_type: 'public' },
      },
    });
    const post = async (i: number) => {
      const started = performance.now();
      const res = await fetch(`${base}/webhooks/harbor`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify(payload(i)) });
      const body = (await res.json()) as { executions: string[]; duplicate?: boolean };
      return { status: res.status, ms: performance.now() - started, ids: body.executions, duplicate: body.duplicate === true };
    };
    const limit = pLimit(IN_FLIGHT);
    const burstStart = performance.now();
    const results = await Promise.all(Array.from({ length: DELIVERIES }, (_, i) => limit(() => post(i))));
    const burstSeconds = (performance.now() - burstStart) / 1000;
    const again = await Promise.all(Array.from({ length: 100 }, (_, i) => limit(() => post(i * 5))));

    const ids = results.flatMap((r) => r.ids);
    const unique = new Set(ids);
    const acked = results.filter((r) => r.status === 202).length;
    const sameIdsAgain = again.every((r, i) => r.duplicate && r.ids.join() === results[i * 5]!.ids.join());

    // Every execution ends (bounded wait), and the service holds exactly that many.
    const deadline = Date.now() + 120_000;
    let listed: Array<{ id: string; status: string }> = [];
    for (;;) {
      listed = [];
      let cursor: string | null = null;
      do {
        const res = await fetch(`${base}/api/v1/executions?limit=500${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        const page = (await res.json()) as { items: Array<{ id: string; status: string }>; next_cursor: string | null };
        listed.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor);
      if (listed.every((e) => e.status !== 'InProgress') || Date.now() > deadline) break;
      await sleep(500);
    }
    const lat = results.map((r) => r.ms);
    const lines = [
      `webhook burst: ${DELIVERIES} deliveries of Harbor's PUSH_ARTIFACT payload, ${IN_FLIGHT} in flight, over loopback, in ${burstSeconds.toFixed(2)} s`,
      `acknowledged 202: ${acked}/${DELIVERIES}; acknowledgement latency p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms`,
      `executions: ${unique.size} distinct ids for ${DELIVERIES} deliveries (${ids.length - unique.size} duplicated); listed by the API: ${listed.length}; finished: ${listed.filter((e) => e.status !== 'InProgress').length}, Succeed: ${listed.filter((e) => e.status === 'Succeed').length}`,
      `100 deliveries repeated: ${again.filter((r) => r.status === 202).length} acknowledged, ${sameIdsAgain ? 'each with the same execution as the first time, none new' : 'MISMATCH'}`,
    ];
    const ok = acked === DELIVERIES && unique.size === DELIVERIES && listed.length === DELIVERIES && sameIdsAgain;
    lines.push(ok ? 'no lost or duplicated execution' : 'LOST OR DUPLICATED EXECUTIONS');
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await Promise.all([src.stop(), dst.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
