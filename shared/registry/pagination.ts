import { ReplicatorError } from '../errors.js';
import { remoteText } from './errors.js';

/**
 * Bounds one paginated listing (`_catalog`, `tags/list`, a Harbor API list): the next page a
 * registry names must be new, its `last=` cursor must move forward, and there are at most
 * `limits.max_pages` pages. A registry answering `Link` to the same page, or full pages forever,
 * would otherwise keep a planner busy until its deadline (on Lambda: into the dead-letter queue).
 * Memory: one URL per page read, so at most `maxPages` of them.
 */
export class PageWalk {
  private readonly seen = new Set<string>();
  private pages = 0;

  /**
   * @param registry the registry's host, named in the error
   * @param listing what is listed: `catalog`, a repository's tags, `projects`...
   */
  constructor(
    private readonly registry: string,
    private readonly listing: string,
    private readonly maxPages: number,
  ) {}

  /**
   * Records the page just read (`url`) and checks the page after it (`next`, undefined at the
   * end): returns `next`, or throws PAGINATION_LOOP.
   */
  next(url: URL, next: URL | undefined): URL | undefined {
    this.pages += 1;
    this.seen.add(key(url));
    if (!next) return undefined;
    if (this.seen.has(key(next))) this.fail(`page ${this.pages + 1} repeats a page already read`);
    const before = url.searchParams.get('last');
    const after = next.searchParams.get('last');
    // The distribution spec's cursor: the last name of the page, names in lexical order.
    if (before !== null && after !== null && !(after > before)) {
      this.fail(`the cursor does not move forward (last="${remoteText(after, 100)}" after last="${remoteText(before, 100)}")`);
    }
    if (this.pages >= this.maxPages) this.fail(`more than ${this.maxPages} pages (limits.max_pages)`);
    return next;
  }

  private fail(why: string): never {
    throw new ReplicatorError('PAGINATION_LOOP', `${this.registry} ${this.listing}: pagination stopped: ${why}`);
  }
}

/** A page's identity: the URL without its fragment, query parameters in one order. */
function key(url: URL): string {
  const u = new URL(url);
  u.hash = '';
  u.searchParams.sort();
  return u.href;
}
