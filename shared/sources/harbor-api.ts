import type { Dispatcher } from 'undici';
import { ReplicatorError } from '../errors.js';
import { basicHeader, type Credentials } from '../registry/auth.js';
import { DEFAULT_RETRY_POLICY, HostStates } from '../registry/backoff.js';
import { nextLink } from '../registry/response.js';
import { RegistryError } from '../registry/errors.js';
import { createDispatcher, discard, header, readBounded, send, type HttpContext, type HttpEvent, type HttpResponse, type RequestAuth } from '../registry/http.js';
import { DEFAULT_LIMITS } from '../registry/limits.js';
import { checkDigest, checkRepository, InvalidNameError, isRepositoryName } from '../registry/names.js';
import { PageWalk } from '../registry/pagination.js';
import { urlUnder } from '../registry/urls.js';

/** Harbor's `Project`, the fields we read (`api/v2.0/swagger.yaml`). */
export interface HarborProject {
  project_id?: number;
  name: string;
  registry_id?: number;
  metadata?: { public?: string };
}

/** Harbor's `Repository`: `name` is the full path, project included. */
export interface HarborRepository {
  name: string;
}

/** Harbor's `Artifact`, the fields we read. Empty arrays come as `null`. */
export interface HarborArtifact {
  digest: string;
  type?: string;
  manifest_media_type?: string;
  tags?: Array<{ name: string }> | null;
  labels?: Array<{ name: string }> | null;
  /** With `with_accessory=true`: its accessories (`AccessoryData`: digest, type, subject...). */
  accessories?: Array<{ digest?: unknown; type?: unknown }> | null;
}

/** How to reach a Harbor's API. */
export interface HarborApiOptions {
  /** `https://harbor.example.com` (the registry's configured URL). */
  url: string;
  tlsVerify?: boolean;
  caFile?: string | undefined;
  credentials?: Credentials | undefined;
  hosts?: HostStates;
  dispatcher?: Dispatcher;
  onEvent?: ((e: HttpEvent) => void) | undefined;
  /** Pages of one list at most (`limits.max_pages`). */
  maxPages?: number | undefined;
}

/** A Harbor project name: one component of the repository grammar (Harbor's own is narrower). */
export function isProjectName(name: string): boolean {
  return isRepositoryName(name) && !name.includes('/');
}

/** Checks a project name before it goes into a request; INVALID_NAME otherwise. */
export function checkProject(name: string, where?: string): string {
  if (!isProjectName(name)) throw new InvalidNameError('repository', name, where ? `${where} (project)` : 'project');
  return name;
}

/** Accessories kept per artifact: more is refused by the copier anyway (`limits.max_index_children`). */
const MAX_ACCESSORIES = 1000;

/** Harbor's accessories as `{digest, type}` (names from outside are checked where they are used). */
export function accessoriesOf(list: HarborArtifact['accessories']): Array<{ digest: string; type: string }> {
  if (!Array.isArray(list)) return [];
  return list
    .slice(0, MAX_ACCESSORIES)
    .filter((a) => typeof a?.digest === 'string')
    .map((a) => ({ digest: a.digest as string, type: typeof a.type === 'string' ? a.type : 'unknown' }));
}

/** Harbor's maximum `page_size`. */
const PAGE_SIZE = 100;
const JSON_LIMIT = 32 * 1024 * 1024;

/**
 * A client of Harbor's API v2.0 (`/api/v2.0`): projects, repositories and artifacts listed page
 * by page (`page`/`page_size`, `Link` or `X-Total-Count`), and project creation. Basic auth, as
 * Harbor's own replication adapter uses it.
 */
export class HarborApi {
  private readonly base: URL;
  private readonly ctx: HttpContext;
  /** Basic credentials, for the Harbor's own origin only (a `Link` elsewhere goes without). */
  private readonly auth: RequestAuth | undefined;
  private readonly maxPages: number;

  constructor(opts: HarborApiOptions) {
    this.base = new URL('/api/v2.0/', opts.url);
    this.ctx = {
      dispatcher: opts.dispatcher ?? createDispatcher({ verify: opts.tlsVerify ?? true, caFile: opts.caFile }),
      hosts: opts.hosts ?? new HostStates(DEFAULT_RETRY_POLICY),
      onEvent: opts.onEvent,
    };
    const authorization = opts.credentials ? basicHeader(opts.credentials) : undefined;
    this.auth = authorization
      ? { origin: this.base.origin, header: async () => authorization, unauthorized: async () => false }
      : undefined;
    this.maxPages = opts.maxPages ?? DEFAULT_LIMITS.maxPages;
  }

  /** `/api/v2.0/<segments>`, each segment encoded. */
  private url(...segments: string[]): URL {
    return urlUnder(this.base, segments);
  }

  private async call(method: 'GET' | 'HEAD' | 'POST', url: URL, expect: number[], body?: unknown, signal?: AbortSignal): Promise<HttpResponse> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return send(this.ctx, {
      method,
      url,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      expect,
      signal,
      ...(this.auth ? { auth: this.auth } : {}),
    });
  }

  private async json(res: HttpResponse): Promise<unknown> {
    const text = await readBounded(res.body, JSON_LIMIT);
    try {
      return JSON.parse(text);
    } catch {
      throw new ReplicatorError('INVALID_RESPONSE', `${res.url.origin}: Harbor answered something that is not JSON at ${res.url.pathname}`);
    }
  }

  /**
   * Every item of a paginated list endpoint (`first`, from `this.url`), one page in memory at a
   * time. `listing` names it in a PAGINATION_LOOP error: a `Link` back to a page already read,
   * or more than `maxPages` pages (full pages without `X-Total-Count` never end by themselves).
   */
  async *paginate<T>(first: URL, listing: string, query: Record<string, string> = {}, signal?: AbortSignal): AsyncGenerator<T> {
    for (const [k, v] of Object.entries(query)) first.searchParams.set(k, v);
    first.searchParams.set('page', '1');
    first.searchParams.set('page_size', String(PAGE_SIZE));
    const walk = new PageWalk(this.base.host, listing, this.maxPages);
    let url: URL | undefined = first;
    let page = 1;
    while (url) {
      const res = await this.call('GET', url, [200], undefined, signal);
      const link = nextLink(res);
      const total = Number(header(res.headers, 'x-total-count'));
      const items = (await this.json(res)) as T[] | null;
      if (!Array.isArray(items) && items !== null) throw new ReplicatorError('INVALID_RESPONSE', `${url.pathname}: expected a list`);
      const count = items?.length ?? 0;
      let next: URL | undefined;
      if (link) {
        next = link; // resolved against the request URL (Harbor sends paths)
      } else if (Number.isFinite(total) ? page * PAGE_SIZE < total : count === PAGE_SIZE) {
        next = new URL(url);
        next.searchParams.set('page', String(page + 1));
      }
      url = walk.next(url, next);
      yield* items ?? [];
      page += 1;
    }
  }

  /** Projects, all of them or those whose name contains `name` (Harbor's fuzzy `name` query). */
  projects(name?: string, signal?: AbortSignal): AsyncGenerator<HarborProject> {
    return this.paginate<HarborProject>(this.url('projects'), 'projects', name ? { name } : {}, signal);
  }

  /** Repositories of a project (`name` is `project/path`). */
  repositories(project: string, signal?: AbortSignal): AsyncGenerator<HarborRepository> {
    checkProject(project, `${this.base.host} repositories`);
    return this.paginate<HarborRepository>(this.url('projects', project, 'repositories'), `project ${project} repositories`, {}, signal);
  }

  /**
   * `projects/{project}/repositories/{name}`: Harbor wants a repository name containing "/"
   * encoded twice (a/b -> a%2Fb -> a%252Fb), so the name is encoded once here and once more as
   * a path segment.
   */
  private repositoryPath(repository: string, where: string): string[] {
    checkRepository(repository, where);
    const [project, ...rest] = repository.split('/');
    if (rest.length === 0) throw new InvalidNameError('repository', repository, `${where} (a Harbor repository is project/name)`);
    return ['projects', project!, 'repositories', encodeURIComponent(rest.join('/'))];
  }

  /**
   * Artifacts of a repository with their tags, labels and accessories (`with_accessory=true`, as
   * Harbor's own replication adapter asks: signatures, SBOMs and other referrers are listed
   * under their subject, not as artifacts).
   */
  artifacts(repository: string, signal?: AbortSignal): AsyncGenerator<HarborArtifact> {
    const path = this.repositoryPath(repository, `${this.base.host} artifacts`);
    return this.paginate<HarborArtifact>(
      this.url(...path, 'artifacts'),
      `${repository} artifacts`,
      { with_tag: 'true', with_label: 'true', with_accessory: 'true' },
      signal,
    );
  }

  /** The accessories of one artifact (`GET .../artifacts/{digest}?with_accessory=true`): what a webhook does not say. */
  async accessories(repository: string, digest: string, signal?: AbortSignal): Promise<Array<{ digest: string; type: string }>> {
    const path = this.repositoryPath(repository, `${this.base.host} artifact`);
    checkDigest(digest, `${this.base.host} artifact of ${repository}`);
    const url = this.url(...path, 'artifacts', digest);
    url.searchParams.set('with_accessory', 'true');
    const res = await this.call('GET', url, [200], undefined, signal);
    return accessoriesOf(((await this.json(res)) as HarborArtifact | null)?.accessories);
  }

  /**
   * Every tag, label and accessory of one artifact (`GET .../artifacts/{digest}?with_tag=true&
   * with_label=true&with_accessory=true`): webhooks carry only the first tag, no label, no accessory.
   */
  async artifactFacts(repository: string, digest: string, signal?: AbortSignal): Promise<{ tags: string[]; labels: string[]; accessories: Array<{ digest: string; type: string }> }> {
    const path = this.repositoryPath(repository, `${this.base.host} artifact`);
    checkDigest(digest, `${this.base.host} artifact of ${repository}`);
    const url = this.url(...path, 'artifacts', digest);
    url.searchParams.set('with_tag', 'true');
    url.searchParams.set('with_label', 'true');
    url.searchParams.set('with_accessory', 'true');
    const res = await this.call('GET', url, [200], undefined, signal);
    const a = (await this.json(res)) as HarborArtifact;
    return { tags: (a.tags ?? []).map((t) => t.name), labels: (a.labels ?? []).map((l) => l.name), accessories: accessoriesOf(a.accessories) };
  }

  /** Whether a project exists (`HEAD /projects?project_name=`). */
  async projectExists(name: string, signal?: AbortSignal): Promise<boolean> {
    checkProject(name, `${this.base.host} project`);
    const url = this.url('projects');
    url.searchParams.set('project_name', name);
    const res = await this.call('HEAD', url, [200, 404], undefined, signal);
    await discard(res.body);
    return res.status === 200;
  }

  /**
   * Creates a project when it is missing (`POST /projects`, private unless asked), as Harbor
   * does before pushing to another Harbor; a concurrent creation (409) is fine.
   */
  async ensureProject(name: string, opts: { public?: boolean } = {}, signal?: AbortSignal): Promise<'exists' | 'created'> {
    if (await this.projectExists(name, signal)) return 'exists';
    const url = this.url('projects');
    try {
      const res = await this.call('POST', url, [201], { project_name: name, metadata: { public: String(opts.public ?? false) } }, signal);
      await discard(res.body);
      return 'created';
    } catch (err) {
      if (err instanceof RegistryError && err.status === 409) return 'exists';
      throw err;
    }
  }
}
