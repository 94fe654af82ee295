import { proxyFromEnv } from '../../shared/registry/proxy.js';
import { copyImage, type CopyResult } from '../../shared/copy/image-copy.js';
import { MemoryKeyedLock } from '../../shared/copy/keyed-lock.js';
import { copyReferrers, findReferrers, ReferrerFailedError, type FoundReferrer, type ReferrerCounts, type ReferrerOptions } from '../../shared/copy/referrers.js';
import { listReferrerTags } from '../../shared/sources/referrer-tags.js';
import { ReplicatorError, UsageError } from '../../shared/errors.js';
import type { Credentials } from '../../shared/registry/auth.js';
import { RegistryClient, type RegistryOptions } from '../../shared/registry/client.js';
import { dockerConfigCredentials, parseCredentials } from '../../shared/registry/docker-config.js';
import { apiHost, formatReference, parseReference, type ImageReference } from '../../shared/registry/reference.js';
import { formatBytes, parseSize } from '../../shared/util/units.js';
import { EXIT } from './exit-codes.js';
import { createProgressView } from './progress-view.js';

interface CopyFlags {
  srcCreds?: string;
  destCreds?: string;
  srcTlsVerify: boolean;
  destTlsVerify: boolean;
  srcCaFile?: string;
  destCaFile?: string;
  override: boolean;
  chunkSize?: string;
  concurrency: string;
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
  /** commander's `--no-referrers`: false when given. */
  referrers: boolean;
  dryRun?: boolean;
}

/** `harbor-replicator copy SRC DST`: resolves to the exit code. */
export async function runCopy(srcText: string, dstText: string, raw: Record<string, unknown>): Promise<number> {
  const flags = raw as unknown as CopyFlags;
  const stderr = process.stderr;
  let srcRef: ImageReference;
  let dstRef: ImageReference;
  let chunkSize: number | undefined;
  let concurrency: number;
  let srcCreds: Credentials | undefined;
  let dstCreds: Credentials | undefined;
  try {
    srcRef = parseReference(srcText);
    dstRef = parseReference(dstText, { defaultTag: undefined });
    // A destination without tag or digest takes the source's tag (or its digest).
    if (!dstRef.tag && !dstRef.digest) {
      if (srcRef.tag) dstRef.tag = srcRef.tag;
      else if (srcRef.digest) dstRef.digest = srcRef.digest;
    }
    chunkSize = flags.chunkSize === undefined ? undefined : parseSize(flags.chunkSize, '--chunk-size');
    concurrency = Number(flags.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new UsageError(`--concurrency: "${flags.concurrency}" must be an integer from 1 to 64`);
    }
    srcCreds = await credentials(flags.srcCreds, 'HARBOR_REPLICATOR_SRC_CREDS', '--src-creds', srcRef.registry);
    dstCreds = await credentials(flags.destCreds, 'HARBOR_REPLICATOR_DEST_CREDS', '--dest-creds', dstRef.registry);
  } catch (err) {
    stderr.write(`harbor-replicator: ${(err as Error).message}\n`);
    return EXIT.USAGE;
  }

  const tty = stderr.isTTY === true && flags.quiet !== true;
  const bars = tty ? (await import('cli-progress')).default : undefined;
  const view = createProgressView({ out: stderr, tty, quiet: flags.quiet === true, debug: flags.debug === true, bars });
  const client = (ref: ImageReference, verify: boolean, caFile: string | undefined, creds: Credentials | undefined) =>
    new RegistryClient(registryOptions(ref, verify, caFile, creds, view.onHttp));
  const src = client(srcRef, flags.srcTlsVerify, flags.srcCaFile, srcCreds);
  const dst = client(dstRef, flags.destTlsVerify, flags.destCaFile, dstCreds);
  const referrerOptions = (): ReferrerOptions => ({
    source: { client: src, repository: srcRef.repository },
    destination: { client: dst, repository: dstRef.repository },
    // One tags/list of the source repository finds its referrer tags (cosign's, the tag schema's).
    tags: () => listReferrerTags(src, srcRef.repository),
    lock: new MemoryKeyedLock(),
    // No record of what an earlier copy pushed: a destination cosign tag at another digest is kept.
    ours: () => false,
    image: { chunkSize, concurrency },
    onEvent: view.onReferrer,
  });
  if (flags.dryRun) return dryRun(src, dst, srcRef, dstRef, flags, flags.referrers ? referrerOptions() : undefined, view.finish);

  let result: CopyResult;
  let referrers: ReferrerCounts | undefined;
  let kept: string[] = [];
  try {
    result = await copyImage(
      { client: src, ref: srcRef },
      { client: dst, ref: dstRef },
      { override: flags.override, chunkSize, concurrency, onEvent: view.onCopy },
    );
    if (flags.referrers && result.status !== 'skipped' && result.manifest) {
      const outcome = await copyReferrers(result.manifest, referrerOptions());
      referrers = outcome.counts;
      kept = outcome.kept;
      if (outcome.failures.length > 0) throw new ReferrerFailedError(`${formatReference(srcRef)}@${result.digest}`, outcome);
    }
  } catch (err) {
    view.finish();
    const code = err instanceof ReplicatorError ? err.code : 'ERROR';
    const message = (err as Error).message;
    stderr.write(`harbor-replicator: copy ${formatReference(srcRef)} -> ${formatReference(dstRef)} failed: ${code}: ${message}\n`);
    if (flags.json) {
      const copied = err instanceof ReferrerFailedError ? { digest: result!.digest, referrers: err.outcome.counts } : {};
      process.stdout.write(
        `${JSON.stringify({ status: 'failed', source: formatReference(srcRef), destination: formatReference(dstRef), ...copied, error: { code, message } })}\n`,
      );
    }
    return err instanceof UsageError ? EXIT.USAGE : EXIT.FAILED;
  }
  view.finish();
  if (flags.json) {
    const { status, source, destination, digest, bytes, blobs, seconds } = result;
    process.stdout.write(
      `${JSON.stringify({ status, source, destination, digest, bytes, blobs, ...(referrers ? { referrers } : {}), seconds: round(seconds), ...(result.reason ? { reason: result.reason } : {}) })}\n`,
    );
  } else {
    process.stdout.write(`${summary(result)}\n`);
    if (referrers) {
      const r = referrers;
      process.stdout.write(`  referrers: ${r.copied} copied, ${r.in_sync} in sync${kept.length ? `; kept at the destination (another digest): ${kept.join(', ')}` : ''}\n`);
    }
  }
  return EXIT.OK;
}

/**
 * `copy --dry-run`: what a copy would do, and nothing written. The source manifest is read, the
 * destination asked whether it has it, and each referrer listed under its subject with its
 * artifactType and whether the destination has it. Exit 0, or 1 when the source cannot be read.
 */
async function dryRun(
  src: RegistryClient,
  dst: RegistryClient,
  srcRef: ImageReference,
  dstRef: ImageReference,
  flags: CopyFlags,
  referrerOptions: ReferrerOptions | undefined,
  finish: () => void,
): Promise<number> {
  const source = formatReference(srcRef);
  const destination = formatReference(dstRef);
  try {
    const top = await src.getManifest(srcRef.repository, srcRef.digest ?? srcRef.tag ?? 'latest');
    const target = dstRef.tag ?? top.digest;
    const there = await dst.headManifest(dstRef.repository, target);
    const action = there?.digest === top.digest ? 'in_sync' : there && !flags.override ? 'skip' : 'copy';
    const tree = referrerOptions && action !== 'skip' ? await findReferrers(top, referrerOptions) : [];
    finish();
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ status: 'dry_run', action, source, destination, digest: top.digest, mediaType: top.mediaType, ...(referrerOptions ? { referrers: tree } : {}) })}\n`);
      return EXIT.OK;
    }
    const verb = action === 'in_sync' ? 'in sync:' : action === 'skip' ? `would skip (override is off; the destination has ${there!.digest}):` : 'would copy';
    process.stdout.write(`${verb} ${source} -> ${destination} ${top.digest} (${top.mediaType})\n`);
    const lines = (list: FoundReferrer[], indent: string) => {
      for (const r of list) {
        const state = r.error ? `error: ${r.error}` : r.present ? 'at the destination' : 'would copy';
        process.stdout.write(`${indent}${r.digest ?? '?'} ${r.artifactType ?? r.mediaType ?? '(no artifactType)'}${r.tag ? ` tag ${r.tag}` : ''} [${r.via}] ${state}\n`);
        lines(r.referrers, `${indent}  `);
      }
    };
    for (const s of tree) {
      if (s.referrers.length === 0) continue;
      process.stdout.write(`  referrers of ${s.subject}:\n`);
      lines(s.referrers, '    ');
    }
    if (referrerOptions && tree.every((s) => s.referrers.length === 0)) process.stdout.write('  no referrers\n');
    process.stderr.write('nothing copied (dry run)\n');
    return EXIT.OK;
  } catch (err) {
    finish();
    const code = err instanceof ReplicatorError ? err.code : 'ERROR';
    process.stderr.write(`harbor-replicator: copy --dry-run ${source} -> ${destination} failed: ${code}: ${(err as Error).message}\n`);
    if (flags.json) process.stdout.write(`${JSON.stringify({ status: 'failed', source, destination, error: { code, message: (err as Error).message } })}\n`);
    return EXIT.FAILED;
  }
}

function registryOptions(
  ref: ImageReference,
  tlsVerify: boolean,
  caFile: string | undefined,
  credentials: Credentials | undefined,
  onEvent: RegistryOptions['onEvent'],
): RegistryOptions {
  // skopeo's --tls-verify=false: skip verification and allow plain HTTP (HTTPS tried first).
  return { host: apiHost(ref.registry), scheme: tlsVerify ? 'https' : 'auto', tlsVerify, caFile, credentials, onEvent, proxy: proxyFromEnv() };
}

async function credentials(flag: string | undefined, envName: string, flagName: string, registry: string): Promise<Credentials | undefined> {
  for (const [text, from] of [
    [flag, flagName],
    [process.env[envName], envName],
  ] as const) {
    if (text === undefined || text === '') continue;
    const c = parseCredentials(text);
    if (!c) throw new UsageError(`${from}: expected USER:PASSWORD`);
    return c;
  }
  return dockerConfigCredentials(registry);
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

function summary(r: CopyResult): string {
  switch (r.status) {
    case 'in_sync':
      return `in sync: ${r.destination} already is ${r.digest}`;
    case 'skipped':
      return `skipped: ${r.destination}: ${r.reason ?? 'not copied'}`;
    case 'copied': {
      const rate = r.seconds > 0 ? `, ${formatBytes(r.bytes / r.seconds)}/s` : '';
      const b = r.blobs;
      return (
        `copied ${r.source} -> ${r.destination} ${r.digest}\n` +
        `  ${formatBytes(r.bytes)} in ${r.seconds.toFixed(2)} s${rate}; blobs: ${b.copied} copied, ${b.skipped} skipped, ${b.mounted} mounted`
      );
    }
  }
}
