import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { request } from 'undici';

/**
 * Fixtures pushed straight over the distribution API (no engine code), with the media types the
 * tools that make them use: cosign's simple-signing signatures, attestations and SBOMs under
 * `sha256-<hex>.sig` / `.att` / `.sbom`; OCI 1.1 referrers (notation's signatures, SPDX SBOMs,
 * in-toto attestations) pushed with a `subject`, and, where the registry does not answer
 * `OCI-Subject`, listed in the subject's `sha256-<hex>` index as the spec asks of clients (oras and
 * notation do so); Helm charts, WASM modules, artifacts with an `artifactType` and the empty config;
 * Docker schema 2 images and manifest lists, indexes of indexes, foreign layers, zstd layers, a
 * signed Docker schema 1 manifest.
 */

export const MT = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_FOREIGN: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  SCHEMA1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  COSIGN_SIMPLESIGNING: 'application/vnd.dev.cosign.simplesigning.v1+json',
  DSSE: 'application/vnd.dsse.envelope.v1+json',
  SPDX: 'application/spdx+json',
  IN_TOTO: 'application/vnd.in-toto+json',
  NOTATION: 'application/vnd.cncf.notary.signature',
  JOSE: 'application/jose+json',
  HELM_CONFIG: 'application/vnd.cncf.helm.config.v1+json',
  HELM_CHART: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
  WASM_CONFIG: 'application/vnd.wasm.config.v0+json',
  WASM_LAYER: 'application/vnd.wasm.content.layer.v1+wasm',
} as const;

/** A descriptor as manifests carry it. */
export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
  urls?: string[];
}

/** A manifest pushed: its descriptor and its bytes. */
export interface Pushed extends Desc {
  bytes: Buffer;
  /** The registry's `OCI-Subject` answer, when it sent one. */
  ociSubject?: string | undefined;
}

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
/** The referrers tag schema's tag of a digest. */
export const schemaTag = (digest: string) => digest.replace(':', '-');

/** A registry to push to: its base URL (`http://127.0.0.1:PORT`) and an Authorization header, if any. */
export interface Target {
  url: string;
  auth?: string;
}

const headers = (t: Target, extra: Record<string, string> = {}) => ({ ...extra, ...(t.auth ? { authorization: t.auth } : {}) });

/** Pushes a blob (POST, then PUT ?digest=), unless the registry has it. */
export async function pushBlob(t: Target, repo: string, data: Buffer | string, mediaType: string): Promise<Desc> {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const digest = sha256(bytes);
  const head = await request(`${t.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: headers(t) });
  await head.body.dump();
  if (head.statusCode !== 200) {
    const post = await request(`${t.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: headers(t, { 'content-length': '0' }) });
    await post.body.dump();
    if (post.statusCode !== 202) throw new Error(`POST upload ${repo} -> ${post.statusCode}`);
    const location = new URL(String(post.headers.location), t.url);
    location.searchParams.set('digest', digest);
    const put = await request(location, { method: 'PUT', body: bytes, headers: headers(t, { 'content-type': 'application/octet-stream' }) });
    const text = await put.body.text();
    if (put.statusCode !== 201) throw new Error(`PUT blob ${repo} ${digest} -> ${put.statusCode} ${text}`);
  }
  return { mediaType, digest, size: bytes.length };
}

/** PUTs manifest bytes under `ref` (a tag, or its digest when none), as they are. */
export async function putManifest(t: Target, repo: string, bytes: Buffer, mediaType: string, ref?: string): Promise<Pushed> {
  const digest = sha256(bytes);
  const res = await request(`${t.url}/v2/${repo}/manifests/${ref ?? digest}`, { method: 'PUT', body: bytes, headers: headers(t, { 'content-type': mediaType }) });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`PUT manifest ${repo}:${ref ?? digest} (${mediaType}) -> ${res.statusCode} ${text}`);
  const subject = res.headers['oci-subject'];
  return { mediaType, digest, size: bytes.length, bytes, ociSubject: typeof subject === 'string' ? subject : undefined };
}

/** Serializes and pushes a manifest object. */
export function pushManifest(t: Target, repo: string, body: Record<string, unknown>, ref?: string): Promise<Pushed> {
  return putManifest(t, repo, Buffer.from(JSON.stringify(body)), String(body.mediaType), ref);
}

const strip = (d: Desc): Desc => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });

/** An image: an OCI (or Docker schema 2) manifest with a config and random layers. */
export async function pushImage(
  t: Target,
  repo: string,
  tag: string | undefined,
  opts: { docker?: boolean; layers?: number[]; zstd?: boolean; foreign?: boolean; platform?: { architecture: string; os: string; variant?: string } } = {},
): Promise<Pushed & { blobs: Desc[]; foreignLayer?: Desc }> {
  const docker = opts.docker === true;
  const layerType = docker ? MT.DOCKER_LAYER : opts.zstd ? MT.OCI_LAYER_ZSTD : MT.OCI_LAYER;
  const layers: Desc[] = [];
  for (const size of opts.layers ?? [2048]) layers.push(await pushBlob(t, repo, randomBytes(size), layerType));
  let foreignLayer: Desc | undefined;
  if (opts.foreign) {
    // A Windows base layer: referenced by URL, never stored in the registry.
    const bytes = randomBytes(512);
    const digest = sha256(bytes);
    foreignLayer = { mediaType: MT.DOCKER_FOREIGN, digest, size: bytes.length, urls: [`https://mcr.microsoft.com/v2/windows/servercore/blobs/${digest}`] };
  }
  const platform = opts.platform ?? { architecture: 'amd64', os: opts.foreign ? 'windows' : 'linux' };
  const config = await pushBlob(
    t,
    repo,
    JSON.stringify({ ...platform, created: '2026-01-01T00:00:00Z', config: { Labels: { nonce: randomBytes(6).toString('hex') } }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }),
    docker ? MT.DOCKER_CONFIG : MT.OCI_CONFIG,
  );
  const all = [...(foreignLayer ? [foreignLayer] : []), ...layers];
  const pushed = await pushManifest(t, repo, { schemaVersion: 2, mediaType: docker ? MT.DOCKER_MANIFEST : MT.OCI_MANIFEST, config, layers: all }, tag);
  return { ...pushed, platform, blobs: [config, ...layers], ...(foreignLayer ? { foreignLayer } : {}) };
}

/** An index (or Docker manifest list) of manifests already pushed. */
export async function pushIndex(t: Target, repo: string, tag: string | undefined, children: Desc[], opts: { docker?: boolean } = {}): Promise<Pushed> {
  return pushManifest(
    t,
    repo,
    { schemaVersion: 2, mediaType: opts.docker ? MT.DOCKER_LIST : MT.OCI_INDEX, manifests: children.map((c) => ({ ...strip(c), ...(c.platform ? { platform: c.platform } : {}) })) },
    tag,
  );
}

/** An artifact: any config and layers, optionally an `artifactType` and a `subject` (then pushed by digest). */
export async function pushArtifact(
  t: Target,
  repo: string,
  ref: string | undefined,
  spec: {
    artifactType?: string;
    config?: { mediaType: string; data: string | Buffer };
    layers: Array<{ mediaType: string; data: string | Buffer; annotations?: Record<string, string> }>;
    subject?: Desc;
    annotations?: Record<string, string>;
  },
): Promise<Pushed> {
  const config = spec.config ? await pushBlob(t, repo, spec.config.data, spec.config.mediaType) : await pushBlob(t, repo, '{}', MT.OCI_EMPTY);
  const layers: Desc[] = [];
  for (const l of spec.layers) layers.push({ ...(await pushBlob(t, repo, l.data, l.mediaType)), ...(l.annotations ? { annotations: l.annotations } : {}) });
  const body: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MT.OCI_MANIFEST,
    ...(spec.artifactType ? { artifactType: spec.artifactType } : {}),
    config,
    layers,
    ...(spec.subject ? { subject: strip(spec.subject) } : {}),
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  };
  const pushed = await pushManifest(t, repo, body, ref);
  return { ...pushed, ...(spec.artifactType ? { artifactType: spec.artifactType } : {}), ...(spec.annotations ? { annotations: spec.annotations } : {}) };
}

/**
 * Attaches an OCI 1.1 referrer to `subject` as oras and notation do: the manifest pushed by
 * digest with its `subject`; a registry that does not answer `OCI-Subject` gets the subject's
 * `sha256-<hex>` index read, the descriptor added, and the index pushed back.
 */
export async function attach(
  t: Target,
  repo: string,
  subject: Desc,
  kind: 'notation' | 'sbom' | 'in-toto' | 'custom',
  opts: { artifactType?: string; data?: string } = {},
): Promise<Pushed> {
  const nonce = randomBytes(6).toString('hex');
  const specs = {
    notation: { artifactType: MT.NOTATION, layers: [{ mediaType: MT.JOSE, data: JSON.stringify({ payload: nonce, protected: 'e30', signature: nonce }) }] },
    sbom: { artifactType: MT.SPDX, layers: [{ mediaType: MT.SPDX, data: JSON.stringify({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: nonce, packages: [] }) }] },
    'in-toto': {
      artifactType: MT.IN_TOTO,
      layers: [{ mediaType: MT.IN_TOTO, data: JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', predicateType: 'https://slsa.dev/provenance/v1', subject: [{ digest: { sha256: subject.digest.slice(7) } }], predicate: { nonce } }), annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v1' } }],
    },
    custom: { artifactType: opts.artifactType ?? 'application/vnd.example.report.v1+json', layers: [{ mediaType: 'application/json', data: opts.data ?? JSON.stringify({ nonce }) }] },
  } as const;
  const spec = specs[kind];
  const created = { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' };
  const pushed = await pushArtifact(t, repo, undefined, { artifactType: spec.artifactType, layers: [...spec.layers], subject, annotations: created });
  if (!pushed.ociSubject) await addToTagSchema(t, repo, subject.digest, { mediaType: MT.OCI_MANIFEST, digest: pushed.digest, size: pushed.size, artifactType: spec.artifactType, annotations: created });
  return pushed;
}

/** Adds a descriptor to a subject's `sha256-<hex>` index (created when missing), as a client of the tag schema does. */
export async function addToTagSchema(t: Target, repo: string, subject: string, d: Desc): Promise<Pushed> {
  const current = await getManifest(t, repo, schemaTag(subject));
  const manifests = current ? ((JSON.parse(current.toString()) as { manifests?: Desc[] }).manifests ?? []) : [];
  if (!manifests.some((m) => m.digest === d.digest)) manifests.push(d);
  return pushManifest(t, repo, { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests }, schemaTag(subject));
}

/**
 * A cosign signature of `subject` under `sha256-<hex>.sig`: cosign's simple-signing payload as a
 * layer with the `dev.cosignproject.cosign/signature` annotation (cosign's tag-based storage).
 */
export async function cosignSign(t: Target, repo: string, subject: Desc, identity = `example.com/${repo}`): Promise<Pushed> {
  const payload = JSON.stringify({ critical: { identity: { 'docker-reference': identity }, image: { 'docker-manifest-digest': subject.digest }, type: 'cosign container image signature' }, optional: { nonce: randomBytes(6).toString('hex') } });
  const layer = await pushBlob(t, repo, payload, MT.COSIGN_SIMPLESIGNING);
  return pushCosignImage(t, repo, `${schemaTag(subject.digest)}.sig`, [{ ...layer, annotations: { 'dev.cosignproject.cosign/signature': randomBytes(48).toString('base64') } }]);
}

/** A cosign attestation under `.att`: a DSSE envelope of an in-toto statement. */
export async function cosignAttest(t: Target, repo: string, subject: Desc): Promise<Pushed> {
  const statement = { _type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://slsa.dev/provenance/v0.2', subject: [{ name: repo, digest: { sha256: subject.digest.slice(7) } }], predicate: {} };
  const envelope = JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: Buffer.from(JSON.stringify(statement)).toString('base64'), signatures: [{ keyid: '', sig: randomBytes(32).toString('base64') }] });
  const layer = await pushBlob(t, repo, envelope, MT.DSSE);
  return pushCosignImage(t, repo, `${schemaTag(subject.digest)}.att`, [{ ...layer, annotations: { predicateType: 'https://slsa.dev/provenance/v0.2', 'dev.cosignproject.cosign/signature': '' } }]);
}

/** An SBOM attached with `cosign attach sbom` under `.sbom`. */
export async function cosignSbom(t: Target, repo: string, subject: Desc): Promise<Pushed> {
  const layer = await pushBlob(t, repo, JSON.stringify({ spdxVersion: 'SPDX-2.3', name: randomBytes(6).toString('hex'), packages: [] }), MT.SPDX);
  return pushCosignImage(t, repo, `${schemaTag(subject.digest)}.sbom`, [layer]);
}

async function pushCosignImage(t: Target, repo: string, tag: string, layers: Desc[]): Promise<Pushed> {
  const config = await pushBlob(t, repo, JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {} }), MT.OCI_CONFIG);
  return pushManifest(t, repo, { schemaVersion: 2, mediaType: MT.OCI_MANIFEST, config, layers }, tag);
}

/** A Helm chart as `helm push` stores it. */
export function pushHelmChart(t: Target, repo: string, tag: string): Promise<Pushed> {
  return pushArtifact(t, repo, tag, {
    config: { mediaType: MT.HELM_CONFIG, data: JSON.stringify({ name: repo.split('/').pop(), version: tag, apiVersion: 'v2' }) },
    layers: [{ mediaType: MT.HELM_CHART, data: randomBytes(3000) }],
  });
}

/** A WASM module as the wasm-to-oci convention stores it. */
export function pushWasm(t: Target, repo: string, tag: string): Promise<Pushed> {
  return pushArtifact(t, repo, tag, {
    config: { mediaType: MT.WASM_CONFIG, data: JSON.stringify({ created: '2026-01-01T00:00:00Z', layerDigests: [] }) },
    layers: [{ mediaType: MT.WASM_LAYER, data: Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), randomBytes(200)]) }],
  });
}

/**
 * A Docker schema 1 manifest signed as docker-registry 2.8 wants it (libtrust's JWS: ES256 over
 * the protected header and the payload up to `formatLength`), pushed to a registry started with
 * `schema1: true`. Returns the digest the registry names it by (that of the unsigned payload).
 */
export async function pushSchema1(t: Target, repo: string, tag: string): Promise<{ digest: string }> {
  const layer = await pushBlob(t, repo, randomBytes(300), 'application/octet-stream');
  const payload = Buffer.from(
    JSON.stringify({ schemaVersion: 1, name: repo, tag, architecture: 'amd64', fsLayers: [{ blobSum: layer.digest }], history: [{ v1Compatibility: JSON.stringify({ id: randomBytes(32).toString('hex') }) }] }, null, 3),
  );
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const close = payload.lastIndexOf('}');
  let last = close - 1;
  while (/\s/.test(String.fromCharCode(payload[last]!))) last--;
  const formatLength = last + 1;
  const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');
  const protectedHeader = b64u(JSON.stringify({ formatLength, formatTail: b64u(payload.subarray(formatLength)), time: '2026-01-01T00:00:00Z' }));
  const signature = sign('sha256', Buffer.from(`${protectedHeader}.${b64u(payload)}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const signatures = [{ header: { jwk: { crv: 'P-256', kty: 'EC', x: jwk.x, y: jwk.y }, alg: 'ES256' }, signature: b64u(signature), protected: protectedHeader }];
  const body = Buffer.concat([payload.subarray(0, formatLength), Buffer.from(`,\n   "signatures": ${JSON.stringify(signatures)}\n}`)]);
  const res = await request(`${t.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body, headers: headers(t, { 'content-type': MT.SCHEMA1_SIGNED }) });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`PUT schema 1 ${repo}:${tag} -> ${res.statusCode} ${text}`);
  return { digest: String(res.headers['docker-content-digest']) };
}

/** A manifest's bytes (by tag or digest), or undefined when the registry has none. */
export async function getManifest(t: Target, repo: string, ref: string): Promise<Buffer | undefined> {
  const res = await request(`${t.url}/v2/${repo}/manifests/${ref}`, {
    headers: headers(t, { accept: [MT.OCI_INDEX, MT.OCI_MANIFEST, MT.DOCKER_LIST, MT.DOCKER_MANIFEST].join(', ') }),
  });
  if (res.statusCode === 404) {
    await res.body.dump();
    return undefined;
  }
  const bytes = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(`GET manifest ${repo}:${ref} -> ${res.statusCode} ${bytes.toString()}`);
  return bytes;
}

/** The descriptors a subject's `sha256-<hex>` index lists (none when there is no index). */
export async function tagSchemaEntries(t: Target, repo: string, subject: string): Promise<Desc[]> {
  const bytes = await getManifest(t, repo, schemaTag(subject));
  return bytes ? ((JSON.parse(bytes.toString()) as { manifests?: Desc[] }).manifests ?? []) : [];
}

/** Every tag of a repository (docker-registry answers them in one page). */
export async function listTags(t: Target, repo: string): Promise<string[]> {
  const res = await request(`${t.url}/v2/${repo}/tags/list`, { headers: headers(t) });
  if (res.statusCode === 404) {
    await res.body.dump();
    return [];
  }
  return (((await res.body.json()) as { tags?: string[] | null }).tags ?? []).sort();
}

/** Deletes a blob from a repository (docker-registry with deletes enabled): what makes a referrer's copy fail. */
export async function deleteBlob(t: Target, repo: string, digest: string): Promise<void> {
  const res = await request(`${t.url}/v2/${repo}/blobs/${digest}`, { method: 'DELETE', headers: headers(t) });
  await res.body.dump();
  if (res.statusCode !== 202) throw new Error(`DELETE blob ${repo} ${digest} -> ${res.statusCode}`);
}

/** A blob's bytes. */
export async function getBlob(t: Target, repo: string, digest: string): Promise<Buffer> {
  const res = await request(`${t.url}/v2/${repo}/blobs/${digest}`, { headers: headers(t) });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(`GET blob ${repo} ${digest} -> ${res.statusCode}`);
  return bytes;
}
