import { ReplicatorError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import type { HttpEvent } from '../registry/http.js';
import type { HarborApi } from '../sources/harbor-api.js';
import { HarborSource } from '../sources/harbor-source.js';
import { referrerTagCatalog, type ReferrerTagCatalog } from '../sources/referrer-tags.js';
import type { Source } from '../sources/source.js';
import { oncePerKey } from '../util/once-per-key.js';
import { speedBytesPerSecond, type RegistryConfig, type RuleConfig } from './config-schema.js';
import type { LoadedConfig } from './load-config.js';
import type { PlanInput } from './plan.js';
import { endpointOf, type RegistryClients } from './registry-endpoint.js';
import { uploadChunkSize } from './registry-types.js';
import type { SecretSources } from './secrets.js';

/** Everything needed to plan and run one rule: its registries' clients and its source lister. */
export interface RuleRuntime {
  rule: RuleConfig;
  source: RegistryConfig;
  destination: RegistryConfig;
  sourceClient: RegistryClient;
  destinationClient: RegistryClient;
  lister: Source;
  /** Harbor's API at the destination (projects are created there when missing). */
  destinationHarbor: HarborApi | undefined;
  /** Harbor's API at the source (listing; an event's other tags). */
  sourceHarbor: HarborApi | undefined;
  /**
   * Makes a destination repository ready to be pushed to, before its first copy: Harbor's
   * project, or with `create_repositories` the ECR repository, the Quay or Docker Hub
   * organization, the DTR / TCR / Volcengine namespace and repository, the Artifactory key, the
   * SWR organization (shared/registry-types/). Each project or repository is
   * done once per runtime (ECR: per process); a failure is tried again by the next task.
   * Undefined when the destination needs nothing.
   */
  ensureDestinationRepository: ((repository: string) => Promise<void>) | undefined;
  planInput(signal?: AbortSignal): PlanInput;
  /** The rule's `speed` as a byte rate per task; undefined: unlimited. */
  bytesPerSecond: number | undefined;
  /** What a copy uploads blobs in at the destination (the rule's `copy_by_chunk`, as the destination type allows); undefined: one streamed PUT. */
  uploadChunkSize: number | undefined;
  /**
   * The source repositories' referrer tags, as this runtime's listings saw them (or listed once
   * by the first copy that needs them): a subject's referrers cost no request to find there.
   */
  referrerTags: ReferrerTagCatalog;
}

/** Wires a rule: clients shared through `clients`, a Harbor API lister for `type: harbor` sources. */
export async function ruleRuntime(
  loaded: LoadedConfig,
  ruleName: string,
  clients: RegistryClients,
  deps: { secrets: SecretSources; onEvent?: ((e: HttpEvent) => void) | undefined },
): Promise<RuleRuntime> {
  const rule = loaded.rule(ruleName);
  const source = loaded.source(rule);
  const destination = loaded.destination(rule);
  const pathOf = (r: RegistryConfig) => `registries[${loaded.config.registries.indexOf(r)}]`;
  const [sourceClient, destinationClient] = await Promise.all([clients.get(source, pathOf(source)), clients.get(destination, pathOf(destination))]);
  const harbor = (r: RegistryConfig) => clients.harborApi(r, pathOf(r), deps.onEvent);
  const sourceHarbor = source.type === 'harbor' ? await harbor(source) : undefined;
  const lister = sourceHarbor ? new HarborSource(sourceHarbor) : await clients.source(source, pathOf(source), sourceClient);
  // What the lister saw of the source's referrer tags (sources/referrer-tags.ts), per source client.
  const referrerTags = referrerTagCatalog(sourceClient);
  const destinationHarbor = destination.type === 'harbor' ? await harbor(destination) : undefined;
  return {
    rule,
    source,
    destination,
    sourceClient,
    destinationClient,
    lister,
    destinationHarbor,
    sourceHarbor,
    ensureDestinationRepository: await repositoryPreparer(destination, pathOf(destination), destinationHarbor, clients),
    uploadChunkSize: uploadChunkSize(rule.copy_by_chunk, destination),
    referrerTags,
    bytesPerSecond: speedBytesPerSecond(rule.speed),
    planInput: (signal) => ({
      rule,
      source,
      sourceHost: endpointOf(source).host,
      destination,
      destinationHost: endpointOf(destination).host,
      lister,
      sourceClient: source.type === 'harbor' ? undefined : sourceClient,
      signal,
    }),
  };
}

/**
 * The one cache of rule wiring in a process (serve, a Lambda container): built on first use,
 * shared by planners and workers, dropped after a config change or a failure to build.
 */
export class RuleRuntimes {
  private readonly cache = new Map<string, Promise<RuleRuntime>>();

  constructor(
    private readonly config: () => LoadedConfig,
    private readonly clients: RegistryClients,
    private readonly deps: { secrets: SecretSources; onEvent?: ((e: HttpEvent) => void) | undefined },
  ) {}

  get(rule: string): Promise<RuleRuntime> {
    let rt = this.cache.get(rule);
    if (!rt) {
      rt = ruleRuntime(this.config(), rule, this.clients, this.deps);
      rt.catch(() => this.cache.delete(rule));
      this.cache.set(rule, rt);
    }
    return rt;
  }

  /** Forgets every rule's wiring (registries or rules changed). */
  clear(): void {
    this.cache.clear();
  }
}

/** The `ensureDestinationRepository` of a destination (see RuleRuntime). */
async function repositoryPreparer(
  destination: RegistryConfig,
  path: string,
  harbor: HarborApi | undefined,
  clients: RegistryClients,
): Promise<((repository: string) => Promise<void>) | undefined> {
  if (harbor) {
    // Harbor wants the project (the repository's first segment) before a push.
    const ensureProject = oncePerKey((project) => harbor.ensureProject(project));
    return async (repository) => void (await ensureProject(repository.split('/', 1)[0]!));
  }
  if (destination.type === 'aws-ecr' && destination.create_repositories) {
    const ecr = await clients.ecr(path);
    let repositories;
    try {
      repositories = ecr.repositoriesAt(endpointOf(destination).host);
    } catch (err) {
      throw new ReplicatorError('ECR_HOST', `${path} (aws-ecr, create_repositories): ${(err as Error).message}`, { cause: err });
    }
    return async (repository) => void (await repositories.ensure(repository));
  }
  // Other types: their organization, namespace or repository key, through their API (registry-types/).
  return clients.preparer(destination, path);
}
