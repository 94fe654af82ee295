import pLimit from 'p-limit';
import { copyArtifact } from '../../shared/copy/copy-artifact.js';
import { BlobLocations } from '../../shared/copy/blob-locations.js';
import { ReplicatorError } from '../../shared/errors.js';
import { formatPlanLine, planRule, type PlanEvent, type PlanItem } from '../../shared/rules/plan.js';
import { RegistryClients } from '../../shared/rules/registry-endpoint.js';
import { ruleRuntime, type RuleRuntime } from '../../shared/rules/rule-runtime.js';
import { formatBytes } from '../../shared/util/units.js';
import { loadConfigForCommand } from './config-file.js';
import { EXIT } from './main.js';

interface RunFlags {
  config?: string;
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
  debug?: boolean;
}

/** Excluded artifacts kept for `--json` (their count is always exact). */
const MAX_LISTED_EXCLUSIONS = 1000;
/** Chunk size of `copy_by_chunk` when the destination registry sets none (Harbor's default). */
const DEFAULT_CHUNK = 10 * 1024 * 1024;

/** `harbor-replicator run RULE`: plans the rule and copies (or, with --dry-run, prints the plan). */
export async function runRule(ruleName: string, flags: RunFlags): Promise<number> {
  const loaded = await loadConfigForCommand(flags.config);
  if (!loaded) return EXIT.USAGE;
  const onEvent = flags.debug
    ? (e: { kind: string; method: string; url: string; status?: number }) =>
        process.stderr.write(`debug: ${e.method} ${e.url}${e.status ? ` -> ${e.status}` : ' (retry)'}\n`)
    : undefined;
  let runtime: RuleRuntime;
  try {
    loaded.rule(ruleName);
    const clients = new RegistryClients({ secrets: {}, onEvent });
    runtime = await ruleRuntime(loaded, ruleName, clients, { secrets: {}, onEvent });
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
    return flags.dryRun ? await dryRun(runtime, flags) : await execute(runtime, flags);
  } catch (err) {
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
 * Copies what the plan selects, `concurrency` artifacts at a time, as the listing advances.
 * (Execution history, resumption and `serve` build on the same planner and copier.)
 */
async function execute(rt: RuleRuntime, flags: RunFlags): Promise<number> {
  const { rule } = rt;
  const limit = pLimit(rule.concurrency);
  const locations = new BlobLocations();
  const projects = new Map<string, Promise<unknown>>();
  const chunkSize = rule.copy_by_chunk ? (rt.destination.chunk_size ?? DEFAULT_CHUNK) : undefined;
  const bytesPerSecond = rule.speed > 0 ? rule.speed * 1024 : undefined;
  const tally = { copied: 0, in_sync: 0, skipped: 0, failed: 0, excluded: 0, bytes: 0 };
  const started = performance.now();
  const say = (line: string) => process.stdout.write(`${line}\n`);

  const copyOne = async (item: PlanItem) => {
    const line = formatPlanLine(item);
    try {
      if (rt.destinationHarbor) {
        const project = item.destination.repository.split('/', 1)[0]!;
        let ensured = projects.get(project);
        if (!ensured) {
          ensured = rt.destinationHarbor.ensureProject(project);
          projects.set(project, ensured);
        }
        await ensured;
      }
      const results = await copyArtifact(
        item,
        { source: rt.sourceClient, destination: rt.destinationClient },
        { override: rule.override, chunkSize, bytesPerSecond, locations, platforms: rule.platforms },
      );
      const status = results.some((r) => r.status === 'copied') ? 'copied' : results.every((r) => r.status === 'in_sync') ? 'in_sync' : 'skipped';
      const bytes = results.reduce((n, r) => n + r.bytes, 0);
      tally[status] += 1;
      tally.bytes += bytes;
      say(`${status === 'in_sync' ? 'in sync' : status} ${line}${bytes ? ` (${formatBytes(bytes)})` : ''}`);
    } catch (err) {
      tally.failed += 1;
      const code = err instanceof ReplicatorError ? err.code : 'ERROR';
      say(`failed ${line}: ${code}: ${(err as Error).message}`);
    }
  };

  const inFlight = new Set<Promise<void>>();
  const events: AsyncIterable<PlanEvent> = planRule(rt.planInput());
  for await (const e of events) {
    if (e.kind === 'excluded') {
      tally.excluded += 1;
      if (flags.verbose) say(`skip ${e.what}: ${e.reason}`);
      continue;
    }
    if (e.kind === 'error') {
      tally.failed += 1;
      say(`failed ${e.what}: DESTINATION_NAME: ${e.error}`);
      continue;
    }
    // Keep the listing at most one window ahead of the copies: memory stays flat.
    const p = limit(() => copyOne(e.item)).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= rule.concurrency * 2) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(
    `rule ${rule.name}: ${tally.copied} copied, ${tally.in_sync} in sync, ${tally.skipped} skipped, ${tally.failed} failed, ${tally.excluded} left out; ${formatBytes(tally.bytes)} in ${seconds.toFixed(1)} s\n`,
  );
  return tally.failed > 0 ? EXIT.FAILED : EXIT.OK;
}
