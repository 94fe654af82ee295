import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';

/** Every manifest type, for HEAD/GET requests made by test helpers. */
export const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Talks to a plain-HTTP test registry directly (no engine code), to check what it holds. */
export async function manifestDigest(registryUrl: string, repo: string, ref: string, auth?: string, caFile?: string): Promise<string | undefined> {
  const res = await request(`${registryUrl}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: { accept: ACCEPT, ...(auth ? { authorization: auth } : {}) },
    ...(caFile ? { dispatcher: new Agent({ connect: { ca: readFileSync(caFile, 'utf8') } }) } : {}),
  });
  await res.body.dump();
  if (res.statusCode === 404) return undefined;
  if (res.statusCode !== 200) throw new Error(`HEAD manifest ${repo}:${ref} -> ${res.statusCode}`);
  return String(res.headers['docker-content-digest']);
}

/** True when the registry has the blob in `repo`. */
export async function blobExists(registryUrl: string, repo: string, digest: string, auth?: string): Promise<boolean> {
  const res = await request(`${registryUrl}/v2/${repo}/blobs/${digest}`, {
    method: 'HEAD',
    headers: auth ? { authorization: auth } : {},
  });
  await res.body.dump();
  return res.statusCode === 200;
}

/**
 * Upload sessions seen through a proxy that the registry would still accept: for each session,
 * its newest URL (with docker-registry's `_state`) is asked for its status; completed,
 * cancelled and broken sessions answer 404. (docker-registry leaves the data of a broken
 * session on disk for its purger, so storage listings say nothing.)
 */
export async function liveUploads(registryUrl: string, log: Array<{ path: string; location?: string }>): Promise<string[]> {
  const latest = new Map<string, string>();
  for (const e of log) {
    for (const url of [e.path, e.location]) {
      if (!url) continue;
      const path = url.replace(/^https?:\/\/[^/]+/, '');
      const m = /\/blobs\/uploads\/([0-9a-f-]{36})/.exec(path);
      if (m) latest.set(m[1]!, path);
    }
  }
  const live: string[] = [];
  for (const [uuid, path] of latest) {
    const u = new URL(path, registryUrl);
    u.searchParams.delete('digest');
    const res = await request(u, { method: 'GET' });
    await res.body.dump();
    if (res.statusCode === 204) live.push(uuid);
  }
  return live;
}

/** Manifests (revisions) a repository holds in storage, tagged or not. */
export async function manifestRevisions(storage: string, repo: string): Promise<string[]> {
  try {
    return await readdir(join(storage, 'docker/registry/v2/repositories', repo, '_manifests/revisions/sha256'));
  } catch {
    return [];
  }
}

/** `Basic` header for test credentials. */
export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
