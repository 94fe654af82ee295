import pLimit from 'p-limit';
import type { RegistryClient } from '../registry/client.js';
import type { Accessory, Source, SourceArtifact } from '../sources/source.js';
import type { RegistryConfig, RuleConfig } from './config-schema.js';
import { isDigest, isRepositoryName, isTag, showName } from '../registry/names.js';
import { DestinationNameError, destinationRepository, pathRuleOf } from './destination.js';
import { RuleFilter } from './filters.js';

/** One side of a planned copy. */
export interface PlanSide {
  /** The registry's name in the config. */
  registry: string;
  /** Its API host (`harbor.example.com`, `127.0.0.1:5000`). */
  host: string;
  repository: string;
  /** Tags to copy (empty: an untagged artifact, copied by digest). */
  tags: string[];
}

/** One artifact a rule selects: what to copy where. */
export interface PlanItem {
  operation: 'copy';
  /** `accessories`: Harbor's accessories of the artifact, which follow it. */
  source: PlanSide & { digest: string | undefined; accessories?: Accessory[] | undefined };
  destination: PlanSide;
}

/** What planning a rule produces, streamed. */
export type PlanEvent =
  | { kind: 'item'; item: PlanItem }
  /** Left out by a filter; `what` names the repository or artifact. */
  | { kind: 'excluded'; what: string; reason: string }
  /**
   * Selected, but it cannot be copied: its destination cannot be named (Harbor's flattening or
   * path rule, `DESTINATION_NAME`), or the source listed a name that breaks the distribution
   * grammar (`INVALID_NAME`: shown escaped in `repository`/`tags`, never requested).
   */
  | { kind: 'error'; what: string; code: string; error: string; repository: string; tags: string[]; digest: string | undefined };

/** What the planner needs for one rule. */
export interface PlanInput {
  rule: RuleConfig;
  source: RegistryConfig;
  sourceHost: string;
  destination: RegistryConfig;
  destinationHost: string;
  lister: Source;
  /** Resolves a tag's digest when the source lists tags only (the registry protocol). */
  sourceClient?: RegistryClient | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Told of each artifact the filters keep, before its digest is resolved: a caller that checks
   * the destination starts those requests now, in parallel with the source's.
   */
  onSelected?: ((destination: { repository: string; tags: readonly string[] }) => void) | undefined;
}

/** Tags resolved to digests at once (HEAD requests), and the window a listing advances by. */
const RESOLVE_WINDOW = 64;
const RESOLVE_CONCURRENCY = 16;

/**
 * Plans a rule, streaming: lists the source page by page, applies the rule's filters
 * (repositories first, so filtered-out repositories are never listed), maps each artifact to its
 * destination name, and yields one event per artifact. Memory holds one listing page and one
 * window of digest lookups, whatever the number of tags.
 */
export async function* planRule(input: PlanInput): AsyncGenerator<PlanEvent> {
  const { rule, signal } = input;
  const filter = new RuleFilter(rule);
  const pathRule = pathRuleOf(input.destination.type);
  const limit = pLimit(RESOLVE_CONCURRENCY);

  for await (const repository of input.lister.repositories(filter.namePattern, signal)) {
    const repoVerdict = filter.repository(repository);
    if (!repoVerdict.keep) {
      yield { kind: 'excluded', what: `${input.sourceHost}/${isRepositoryName(repository) ? repository : showName(repository)}`, reason: repoVerdict.reason };
      continue;
    }
    if (!isRepositoryName(repository)) {
      // A hostile or broken listing: an error of that name, and nothing is requested with it.
      const shown = showName(repository);
      yield { kind: 'error', what: `${input.sourceHost}/${shown}`, code: 'INVALID_NAME', error: `the source listed an invalid repository name ${shown}`, repository: shown, tags: [], digest: undefined };
      continue;
    }
    let dstRepository: string | undefined;
    let nameError: string | undefined;
    try {
      dstRepository = destinationRepository(repository, rule.dest_namespace, rule.dest_namespace_replace_count, pathRule);
    } catch (err) {
      if (!(err instanceof DestinationNameError)) throw err;
      nameError = err.message;
    }
    const invalid = (artifact: SourceArtifact, tags: readonly string[]): PlanEvent | undefined => {
      const badTag = tags.find((t) => !isTag(t));
      const badDigest = artifact.digest !== undefined && !isDigest(artifact.digest) ? artifact.digest : undefined;
      if (badTag === undefined && badDigest === undefined) return undefined;
      const shownTags = tags.map((t) => (isTag(t) ? t : showName(t)));
      const message = badTag !== undefined ? `the source listed an invalid tag ${showName(badTag)}` : `the source listed an invalid digest ${showName(badDigest!)}`;
      return { kind: 'error', what: `${input.sourceHost}/${repository}:${shownTags.join(',')}`, code: 'INVALID_NAME', error: message, repository, tags: shownTags, digest: undefined };
    };

    let window: Array<{ artifact: SourceArtifact; tags: string[] }> = [];
    const flush = async function* (): AsyncGenerator<PlanEvent> {
      const resolved = await Promise.all(
        window.map(({ artifact, tags }) =>
          limit(async () => {
            let digest = artifact.digest;
            if (!digest && input.sourceClient && tags[0] !== undefined) {
              digest = (await input.sourceClient.headManifest(repository, tags[0], signal))?.digest;
            }
            return { artifact, tags, digest };
          }),
        ),
      );
      window = [];
      for (const { artifact, tags, digest } of resolved) {
        const what = `${input.sourceHost}/${repository}${tags.length ? `:${tags.join(',')}` : ''}${digest ? `@${digest}` : ''}`;
        if (nameError !== undefined || dstRepository === undefined) {
          yield { kind: 'error', what, code: 'DESTINATION_NAME', error: nameError ?? 'no destination name', repository, tags, digest };
          continue;
        }
        if (!digest && tags.length > 0 && input.sourceClient) {
          yield { kind: 'excluded', what, reason: 'tag disappeared from the source while listing' };
          continue;
        }
        yield {
          kind: 'item',
          item: {
            operation: 'copy',
            source: { registry: input.source.name, host: input.sourceHost, repository, tags, digest, ...(artifact.accessories ? { accessories: artifact.accessories } : {}) },
            destination: { registry: input.destination.name, host: input.destinationHost, repository: dstRepository, tags: [...tags] },
          },
        };
      }
    };

    for await (const artifact of input.lister.artifacts(repository, signal)) {
      const verdict = filter.artifact(artifact);
      if (!verdict.keep) {
        const label = artifact.tags.length ? `:${artifact.tags.join(',')}` : artifact.digest ? `@${artifact.digest}` : '';
        yield { kind: 'excluded', what: `${input.sourceHost}/${repository}${label}`, reason: verdict.reason };
        continue;
      }
      const bad = invalid(artifact, verdict.tags);
      if (bad) {
        yield bad;
        continue;
      }
      window.push({ artifact, tags: verdict.tags });
      if (dstRepository !== undefined) input.onSelected?.({ repository: dstRepository, tags: verdict.tags });
      if (window.length >= RESOLVE_WINDOW) yield* flush();
    }
    if (window.length > 0) yield* flush();
  }
}

/** `source -> destination`, one line per planned artifact. */
export function formatPlanLine(item: PlanItem): string {
  const s = item.source;
  const d = item.destination;
  const src = `${s.host}/${s.repository}${s.tags.length ? `:${s.tags.join(',')}` : ''}${s.digest ? `@${s.digest}` : ''}`;
  const dst = `${d.host}/${d.repository}${d.tags.length ? `:${d.tags.join(',')}` : s.digest ? `@${s.digest}` : ''}`;
  return `${src} -> ${dst}`;
}
