import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createGzip, constants as zlib } from 'node:zlib';

const run = promisify(execFile);

/** A descriptor as it appears in a manifest. */
export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
}

/** An OCI image layout on disk, ready for `skopeo copy oci:DIR:TAG`. */
export interface Layout {
  dir: string;
  /** The top manifest (image or index) under the layout's tag. */
  top: Desc;
  /** Every blob (layers and configs) the layout holds. */
  blobs: Desc[];
  /** The children of an index (empty for an image). */
  children: Desc[];
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const CONFIG = 'application/vnd.oci.image.config.v1+json';

/** A layer to generate: `size` random bytes wrapped in gzip (stored blocks: fast, valid). */
export interface LayerSpec {
  size: number;
  /** Reuse these exact bytes (a shared base layer) instead of random ones. */
  content?: Buffer;
}

async function writeBlob(dir: string, data: Buffer | string, mediaType: string): Promise<Desc> {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const hex = createHash('sha256').update(buf).digest('hex');
  await writeFile(join(dir, 'blobs', 'sha256', hex), buf);
  return { mediaType, digest: `sha256:${hex}`, size: buf.length };
}

/** Streams `size` random bytes through gzip (level 0) into a blob; memory stays flat. */
async function writeRandomLayer(dir: string, size: number): Promise<Desc> {
  const tmp = join(dir, 'blobs', `tmp-${randomBytes(6).toString('hex')}`);
  const hash = createHash('sha256');
  let written = 0;
  const gzip = createGzip({ level: zlib.Z_NO_COMPRESSION });
  const out = createWriteStream(tmp);
  gzip.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    written += chunk.length;
  });
  gzip.pipe(out);
  const block = 1024 * 1024;
  for (let left = size; left > 0; left -= block) {
    if (!gzip.write(randomBytes(Math.min(block, left)))) await new Promise((r) => gzip.once('drain', r));
  }
  gzip.end();
  await new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  const hex = hash.digest('hex');
  await rename(tmp, join(dir, 'blobs', 'sha256', hex));
  return { mediaType: LAYER, digest: `sha256:${hex}`, size: written };
}

async function newLayout(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hr-layout-'));
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return dir;
}

async function addImage(
  dir: string,
  layers: LayerSpec[],
  platform = { architecture: 'amd64', os: 'linux' },
): Promise<{ manifest: Desc; blobs: Desc[] }> {
  const layerDescs: Desc[] = [];
  for (const l of layers) {
    layerDescs.push(l.content ? await writeBlob(dir, l.content, LAYER) : await writeRandomLayer(dir, l.size));
  }
  const config = await writeBlob(
    dir,
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      created: new Date(0).toISOString(),
      config: { Labels: { nonce: randomBytes(8).toString('hex') } },
      rootfs: { type: 'layers', diff_ids: layerDescs.map((d) => d.digest) },
    }),
    CONFIG,
  );
  const manifest = await writeBlob(
    dir,
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: layerDescs }),
    OCI_MANIFEST,
  );
  return { manifest: { ...manifest, platform }, blobs: [config, ...layerDescs] };
}

async function writeIndexJson(dir: string, top: Desc, tag: string): Promise<void> {
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: top.mediaType, digest: top.digest, size: top.size, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
}

/** An OCI layout holding one single-platform image under `tag`. */
export async function imageLayout(layers: LayerSpec[], tag = 'latest'): Promise<Layout> {
  const dir = await newLayout();
  const img = await addImage(dir, layers);
  const top = { mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.size };
  await writeIndexJson(dir, top, tag);
  return { dir, top, blobs: img.blobs, children: [] };
}

/** An OCI layout holding a multi-platform index under `tag`. */
export async function indexLayout(
  platforms: Array<{ architecture: string; os: string; variant?: string }>,
  layers: LayerSpec[],
  tag = 'latest',
): Promise<Layout> {
  const dir = await newLayout();
  const children: Desc[] = [];
  const blobs: Desc[] = [];
  for (const p of platforms) {
    const img = await addImage(dir, layers, p);
    children.push(img.manifest);
    blobs.push(...img.blobs);
  }
  const top = await writeBlob(
    dir,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c) => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: c.platform })),
    }),
    OCI_INDEX,
  );
  await writeIndexJson(dir, top, tag);
  return { dir, top, blobs, children };
}

/** Pushes a layout to a registry with skopeo (digests preserved, all platforms). */
export async function pushLayout(
  layout: Layout,
  ref: string,
  opts: { creds?: string; tag?: string; tlsVerify?: boolean } = {},
): Promise<void> {
  const args = ['copy', '--all', '--preserve-digests', '--quiet', `--dest-tls-verify=${opts.tlsVerify ?? false}`];
  if (opts.creds) args.push('--dest-creds', opts.creds);
  args.push(`oci:${layout.dir}:${opts.tag ?? 'latest'}`, `docker://${ref}`);
  await run('skopeo', args, { maxBuffer: 16 * 1024 * 1024 });
}

/** Creates an htpasswd (bcrypt) file with one user. */
export async function htpasswdFile(user: string, password: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hr-htpasswd-'));
  const path = join(dir, 'htpasswd');
  await run('htpasswd', ['-Bbc', path, user, password]);
  return path;
}
