import { proxyFromEnv } from '../../shared/registry/proxy.js';
import type { HttpEvent } from '../../shared/registry/http.js';
import { ReplicatorError } from '../../shared/errors.js';
import { formatPlanLine, planRule } from '../../shared/rules/plan.js';
import { limitsOf } from '../../shared/rules/config-schema.js';
import { RegistryClients } from '../../shared/rules/registry-endpoint.js';
import type { LoadedConfig } from '../../shared/rules/load-config.js';
import { ruleRuntime, type RuleRuntime } from '../../shared/rules/rule-runtime.js';
import { loadConfigForCommand } from './config-file.js';
import { loadEcrLocally, localSecretStore } from '../local/platform.js';
import { DEFAULT_DATA_DIR, isDataDirProblem } from './data-dir.js';
import { EXIT } from './exit-codes.js';

interface RunFlags {
  config?: string;
  dataDir?: string;
  quiet?: boolean;
  dryRun?: boolean;
  reconcile?: boolean;
  json?: boolean;
  verbose?: boolean;
  debug?: boolean;
}

/** Excluded artifacts kept for `--json` (their count is always exact). */
const MAX_LISTED_EXCLUSIONS = 1000;

/**
 * `harbor-replicator run RULE`: plans the rule and copies (or, with --dry-run, prints the plan);
 * with --reconcile, a drift reconcile (or, with --dry-run, the drift).
 */
export async function runRule(ruleName: string, flags: RunFlags): Promise<number> {
  // The data dir opens (its files, on libuv's threads) while the config is read and checked.
  const embedded = flags.dryRun ? undefined : openStore(flags.dataDir ?? DEFAULT_DATA_DIR);
  embedded?.catch(() => {}); // reported where it is awaited
  try {
    return await runRuleWith(ruleName, flags, embedded);
  } finally {
    await (await embedded?.catch(() => undefined))?.close();
  }
}

async function openStore(dir: string) {
  const { openEmbeddedStore } = await import('../../shared/adapters/local/embedded-store.js');
  return openEmbeddedStore(dir);
}

async function runRuleWith(ruleName: string, flags: RunFlags, embeddedStore: ReturnType<typeof openStore> | undefined): Promise<number> {
  const loaded = await loadConfigForCommand(flags.config);
  if (!loaded) return EXIT.USAGE;
  const onEvent = httpEventsView(flags.debug === true, loaded.config.registries.some((r) => r.type === 'docker-hub'));
  let runtime: RuleRuntime;
  try {
    loaded.rule(ruleName);
    // ECR's API and Secrets Manager (and the AWS SDK) are loaded only if the config needs them.
    const secrets = { store: localSecretStore() };
    const clients = new RegistryClients({ secrets, onEvent, limits: limitsOf(loaded.config), ecr: loadEcrLocally, proxy: proxyFromEnv() });
    runtime = await ruleRuntime(loaded, ruleName, clients, { secrets, onEvent });
  } catch (err) {
    if (!(err instanceof ReplicatorError)) throw err;
    process.stderr.write(`harbor-replicator: ${err.message}\n`);
    return EXIT.USAGE;
  }
  if (!runtime.rule.enabled && !flags.dryRun) {
    // As Harbor: a disabled policy does not run, not even by hand.
    process.stderr.write(`harbor-replicator: rule ${ruleName} is disabled (enabled: false); --dry-run still shows its plan\n`);
    return EXIT.USAGE;
  }
  try {
    if (flags.dryRun) return flags.reconcile ? await driftDryRun(runtime, flags) : await dryRun(runtime, flags);
    return await execute(runtime, loaded, flags, await embeddedStore!);
  } catch (err) {
    if (err instanceof ReplicatorError && isDataDirProblem(err)) {
      process.stderr.write(`harbor-replicator: ${err.message}\n`);
      return EXIT.USAGE;
    }
    const code = err instanceof ReplicatorError ? err.code : 'ERROR';
    process.stderr.write(`harbor-replicator: rule ${ruleName} failed: ${code}: ${(err as Error).message}\n`);
    return EXIT.FAILED;
  }
}

/** Prints the plan (streamed: one line or JSON element per artifact as the listing advances). */
async function dryRun(rt: RuleRuntime, flags: RunFlags): Promise<number> {
  const out = process.stdout;
  const counts = { items: 0, excluded: 0, errors: 0 };
  const excluded: Array<{ what: string; reason: string }> = [];
  const errors: Array<{ what: string; error: string }> = [];
  if (flags.json) {
    out.write(`{"rule":${JSON.stringify(rt.rule.name)},"source":${JSON.stringify(rt.source.name)},"destination":${JSON.stringify(rt.destination.name)},"items":[`);
  }
  for await (const e of planRule(rt.planInput())) {
    if (e.kind === 'item') {
      if (flags.json) out.write(`${counts.items ? ',' : ''}${JSON.stringify(e.item)}`);
      else out.write(`${formatPlanLine(e.item)}\n`);
      counts.items += 1;
    } else if (e.kind === 'excluded') {
      counts.excluded += 1;
      if (flags.json && excluded.length < MAX_LISTED_EXCLUSIONS) excluded.push({ what: e.what, reason: e.reason });
      if (!flags.json && flags.verbose) out.write(`skip ${e.what}: ${e.reason}\n`);
    } else {
      counts.errors += 1;
      if (flags.json) errors.push({ what: e.what, error: e.error });
      else out.write(`error ${e.what}: ${e.error}\n`);
    }
  }
  if (flags.json) {
    out.write(`],"excluded":${JSON.stringify(excluded)},"errors":${JSON.stringify(errors)},"counts":${JSON.stringify(counts)}}\n`);
  } else {
    const hint = counts.excluded && !flags.verbose ? ' (--verbose says why)' : '';
    process.stderr.write(`plan of rule ${rt.rule.name}: ${counts.items} to copy, ${counts.excluded} left out${hint}, ${counts.errors} error(s); nothing copied (dry run)\n`);
  }
  return counts.errors > 0 ? EXIT.FAILED : EXIT.OK;
}

/**
 * Prints the drift of the rule (`--reconcile --dry-run`) as it is found, changing nothing: one
 * line (or JSON element) per tag missing, different or extra at the destination; a summary on
 * stderr. 0 no drift, 3 drift, 1 when an artifact could not be checked (its name).
 */
async function driftDryRun(rt: RuleRuntime, flags: RunFlags): Promise<number> {
  const { measureDrift } = await import('../../shared/executions/reconcile.js');
  const { hasDrift } = await import('../../shared/executions/drift.js');
  const out = process.stdout;
  const dst = rt.destinationClient.host;
  let n = 0;
  const errors: Array<{ what: string; error: string }> = [];
  if (flags.json) {
    out.write(`{"rule":${JSON.stringify(rt.rule.name)},"source":${JSON.stringify(rt.source.name)},"destination":${JSON.stringify(rt.destination.name)},"items":[`);
  }
  const { report } = await measureDrift(rt, {
    onEntry: (e) => {
      if (flags.json) out.write(`${n++ ? ',' : ''}${JSON.stringify(e)}`);
      else out.write(`${formatDriftLine(dst, e)}\n`);
    },
    onError: (e) => {
      errors.push({ what: e.what, error: e.error });
      if (!flags.json) out.write(`error ${e.what}: ${e.error}\n`);
    },
    onExcluded: (e) => {
      if (!flags.json && flags.verbose) out.write(`skip ${e.what}: ${e.reason}\n`);
    },
  });
  const c = report.counts;
  if (flags.json) {
    out.write(`],"errors":${JSON.stringify(errors)},"counts":${JSON.stringify(c)},"extrasChecked":${report.extrasChecked},"takenAt":${JSON.stringify(report.takenAt)}}\n`);
  } else {
    const extra = report.extrasChecked ? `${c.extra} extra` : 'extra tags not looked for (replicate_deletion is off)';
    process.stderr.write(`drift of rule ${rt.rule.name}: ${c.missing} missing, ${c.different} different, ${extra}; ${c.inSync} in sync, ${errors.length} error(s); nothing changed (dry run)\n`);
  }
  if (errors.length > 0) return EXIT.FAILED;
  return hasDrift(report) ? EXIT.DRIFT : EXIT.OK;
}

/** One drift entry for humans: `kind host/repository:tag` and the digests involved. */
function formatDriftLine(host: string, e: import('../../shared/executions/model.js').DriftEntry): string {
  const at = `${host}/${e.repository}${e.tag.includes(':') ? '@' : ':'}${e.tag}`;
  switch (e.kind) {
    case 'missing':
      return `missing ${at} (source ${e.sourceRepository}@${e.sourceDigest ?? '?'})`;
    case 'different':
      return `different ${at} is ${e.destinationDigest}, source ${e.sourceRepository}@${e.sourceDigest ?? '?'}`;
    case 'extra':
      return `extra ${at} ${e.destinationDigest} (${e.action === 'delete' ? 'a reconcile deletes it' : `kept: ${e.reason}`})`;
  }
}

/**
 * Runs one execution to completion on the embedded store (history kept in the data dir):
 * planner and workers in this process, progress on stderr, a summary on stdout.
 */
async function execute(rt: RuleRuntime, config: LoadedConfig, flags: RunFlags, embedded: Awaited<ReturnType<typeof openStore>>): Promise<number> {
  const { runExecution } = await import('../../shared/executions/local-runner.js');
  const { createRunProgress, executionSummary } = await import('./run-progress.js');
  const stderr = process.stderr;
  const tty = stderr.isTTY === true && !flags.quiet;
  const progress = createRunProgress({ out: stderr, tty, quiet: flags.quiet === true, bars: tty ? (await import('cli-progress')).default : undefined });
  // Ctrl-C stops the execution: pending tasks become Stopped, running copies stop at their next chunk.
  const stop = new AbortController();
  const onSignal = () => {
    stderr.write('stopping: pending tasks become Stopped, running copies cancel their uploads\n');
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = performance.now();
  try {
    const { newMemoryQueue } = await import('../../shared/adapters/local/memory-queue.js');
    const trigger = flags.reconcile ? 'reconcile' : 'manual';
    const execution = await runExecution({ store: embedded.store, newQueue: newMemoryQueue, config, runtime: rt, trigger, signal: stop.signal, onEvent: (e) => progress.onEvent(e) });
    progress.finish();
    if (flags.json) process.stdout.write(`${JSON.stringify(execution)}\n`);
    else process.stdout.write(`${executionSummary(execution, (performance.now() - started) / 1000)}\n`);
    if (execution.counts.failed > 0 && !flags.json) {
      process.stdout.write(`failed tasks: harbor-replicator tasks ${execution.id} --status Error${flags.dataDir ? ` --data-dir ${flags.dataDir}` : ''}\n`);
    }
    return execution.status === 'Succeed' ? EXIT.OK : EXIT.FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * What `run` shows of the registries' requests: every one with --debug (with the pull budget a
 * registry states, Docker Hub's `ratelimit-remaining`), else, when a registry is Docker Hub, one
 * warning when its budget is spent. Nothing is listened to otherwise.
 */
function httpEventsView(debug: boolean, dockerHub: boolean): ((e: HttpEvent) => void) | undefined {
  if (!debug && !dockerHub) return undefined;
  let warned = false;
  return (e) => {
    const rl = e.kind === 'response' ? e.rateLimit : undefined;
    const budget = rl ? ` [ratelimit-remaining ${rl.remaining}${rl.limit !== undefined ? ` of ${rl.limit}` : ''}]` : '';
    if (debug) {
      process.stderr.write(`debug: ${e.method} ${e.url}${e.kind === 'response' ? ` -> ${e.status}` : ' (retry)'}${budget}\n`);
    } else if (rl?.remaining === 0 && !warned) {
      warned = true;
      process.stderr.write(`warning: ${new URL(e.url).host}: rate limit reached${budget}; further pulls get 429 until the window moves\n`);
    }
  };
}
