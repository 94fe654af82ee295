// Loaded with `node --import` into a measured run (`npm run profile`): counts the HTTP requests
// the run makes (by origin, method and kind of path) and the TCP connections it opens, through
// undici's diagnostics channels (the bundled client publishes them too), and writes the counts
// as JSON to $HR_CENSUS_FILE when the process exits.
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';

const requests = new Map<string, number>();
const connections = new Map<string, number>();
const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** `/v2/bench/sync/manifests/v01` -> `manifests`; `/v2/x/blobs/uploads/<id>` -> `blobs/uploads`. */
function kind(path: string): string {
  if (path === '/v2/' || path === '/v2') return 'ping';
  const m = /\/(manifests|blobs\/uploads|blobs|tags\/list|_catalog)\b/.exec(path);
  return m ? m[1]! : path.split('?')[0]!;
}

subscribe('undici:request:create', (message) => {
  const { request } = message as { request: { origin: string; method: string; path: string } };
  add(requests, `${request.origin} ${request.method} ${kind(request.path)}`);
});
subscribe('undici:client:connected', (message) => {
  const { connectParams } = message as { connectParams: { protocol: string; hostname: string; port: string } };
  add(connections, `${connectParams.protocol}//${connectParams.hostname}:${connectParams.port}`);
});

process.on('exit', () => {
  const file = process.env.HR_CENSUS_FILE;
  if (file) writeFileSync(file, JSON.stringify({ requests: Object.fromEntries(requests), connections: Object.fromEntries(connections) }));
});
