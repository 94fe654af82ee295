import type { Dispatcher } from 'undici';
import { ReplicatorError } from '../errors.js';
import { basicHeader, type Credentials } from '../registry/auth.js';
import { DEFAULT_RETRY_POLICY, HostStates } from '../registry/backoff.js';
import { header, nextLink } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { createDispatcher, discard, readBounded, send, type HttpContext, type HttpEvent, type HttpResponse } from '../registry/http.js';

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
  private readonly authorization: string | undefined;

  constructor(opts: HarborApiOptions) {
    this.base = new URL('/api/v2.0/', opts.url);
    this.ctx = {
      dispatcher: opts.dispatcher ?? createDispatcher({ verify: opts.tlsVerify ?? true, caFile: opts.caFile }),
      hosts: opts.hosts ?? new HostStates(DEFAULT_RETRY_POLICY),
      onEvent: opts.onEvent,
    };
    this.authorization = opts.credentials ? basicHeader(opts.credentials) : undefined;
  }

  private async call(method: 'GET' | 'HEAD' | 'POST', url: URL, expect: number[], body?: unknown, signal?: AbortSignal): Promise<HttpResponse> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.authorization) headers.authorization = this.authorization;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return send(this.ctx, { method, url, headers, body: body === undefined ? null : JSON.stringify(body), expect, signal });
  }

  private async json(res: HttpResponse): Promise<unknown> {
    const text = await readBounded(res.body, JSON_LIMIT);
    try {
      return JSON.parse(text);
    } catch {
      throw new ReplicatorError('INVALID_RESPONSE', `${res.url.origin}: Harbor answered something that is not JSON at ${res.url.pathname}`);
    }
  }

  /** Every item of a paginated list endpoint, one page in memory at a time. */
  async *paginate<T>(path: string, query: Record<string, string> = {}, signal?: AbortSignal): AsyncGenerator<T> {
    const first = new URL(path, this.base);
    for (const [k, v] of Object.entries(query)) first.searchParams.set(k, v);
    first.searchParams.set('page', '1');
    first.searchParams.set('page_size', String(PAGE_SIZE));
    let url: URL | undefined = first;
    let page = 1;
    while (url) {
      const res = await this.call('GET', url, [200], undefined, signal);
      const link = nextLink(res);
      const total = Number(header(res.headers, 'x-total-count'));
      const items = (await this.json(res)) as T[] | null;
      if (!Array.isArray(items) && items !== null) throw new ReplicatorError('INVALID_RESPONSE', `${url.pathname}: expected a list`);
      yield* items ?? [];
      const count = items?.length ?? 0;
      if (link) {
        url = link; // resolved against the request URL (Harbor sends paths)
      } else if (Number.isFinite(total) ? page * PAGE_SIZE < total : count === PAGE_SIZE) {
        url = new URL(url);
        url.searchParams.set('page', String(page + 1));
      } else {
        url = undefined;
      }
      page += 1;
    }
  }

  /** Projects, all of them or those whose name contains `name` (Harbor's fuzzy `name` query). */
  projects(name?: string, signal?: AbortSignal): AsyncGenerator<HarborProject> {
    return this.paginate<HarborProject>('projects', name ? { name } : {}, signal);
  }

  /** Repositories of a project (`name` is `project/path`). */
  repositories(project: string, signal?: AbortSignal): AsyncGenerator<HarborRepository> {
    return this.paginate<HarborRepository>(`projects/${encodeURIComponent(project)}/repositories`, {}, signal);
  }

  /** Artifacts of a repository with their tags and labels. */
  artifacts(repository: string, signal?: AbortSignal): AsyncGenerator<HarborArtifact> {
    const [project, ...rest] = repository.split('/');
    // Harbor wants a repository name containing "/" encoded twice: a/b -> a%2Fb -> a%252Fb.
    const name = encodeURIComponent(encodeURIComponent(rest.join('/')));
    return this.paginate<HarborArtifact>(`projects/${encodeURIComponent(project!)}/repositories/${name}/artifacts`, { with_tag: 'true', with_label: 'true' }, signal);
  }

  /** Every tag of one artifact (`GET .../artifacts/{digest}?with_tag=true`): webhooks carry only the first. */
  async artifactTags(repository: string, digest: string, signal?: AbortSignal): Promise<string[]> {
    const [project, ...rest] = repository.split('/');
    const name = encodeURIComponent(encodeURIComponent(rest.join('/')));
    const url = new URL(`projects/${encodeURIComponent(project!)}/repositories/${name}/artifacts/${digest}`, this.base);
    url.searchParams.set('with_tag', 'true');
    const res = await this.call('GET', url, [200], undefined, signal);
    const a = (await this.json(res)) as HarborArtifact;
    return (a.tags ?? []).map((t) => t.name);
  }

  /** Whether a project exists (`HEAD /projects?project_name=`). */
  async projectExists(name: string, signal?: AbortSignal): Promise<boolean> {
    const url = new URL('projects', this.base);
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
    const url = new URL('projects', this.base);
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
