import type { Hono, MiddlewareHandler } from 'hono';
import { error } from './respond.js';

/** The console's built files (`npm run build` puts them in dist/console/), read once by the host. */
export interface ConsoleAssets {
  /** The page: loads the bundle with `<script type=module src>`, nothing inline. */
  index: Uint8Array<ArrayBuffer>;
  /** `/assets/<name>`: bytes and media type. */
  files: ReadonlyMap<string, { body: Uint8Array<ArrayBuffer>; type: string }>;
}

/**
 * The one policy of every answer: scripts, styles, images and API calls from this origin only,
 * nothing inline, no plugins, no base or form targets elsewhere, never framed (clickjacking).
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Security headers on every answer (the console's pages and the API's JSON alike). */
export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.header('content-security-policy', CONSOLE_CSP);
  c.header('x-content-type-options', 'nosniff');
  c.header('x-frame-options', 'DENY');
  c.header('referrer-policy', 'no-referrer');
  c.header('cross-origin-opener-policy', 'same-origin');
  c.header('cross-origin-resource-policy', 'same-origin');
};

/** A built file whose name carries its content hash (`app-3KQ2B7XZ.js`): it never changes. */
const HASHED = /-[A-Z0-9]{8}\.[a-z]+$/;

/**
 * The replication console: `GET /` (the page, revalidated each time) and `GET /assets/<name>`
 * (the bundle; hashed names cached for a year). Without built assets, `/` says how to build them.
 */
export function mountConsole(app: Hono, assets: ConsoleAssets | undefined): void {
  app.get('/', (c) => {
    if (!assets) return error(c, 404, 'CONSOLE_NOT_BUILT', "the console's files are not in this installation (npm run build makes them in dist/console/)");
    return c.body(assets.index, 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
  });
  app.get('/assets/:name', (c) => {
    const name = c.req.param('name');
    const file = assets?.files.get(name);
    if (!file) return error(c, 404, 'NOT_FOUND', 'no such asset');
    const cache = HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'public, max-age=3600';
    return c.body(file.body, 200, { 'content-type': file.type, 'cache-control': cache });
  });
}
