import { proxyFromEnv } from '../../shared/registry/proxy.js';
import { copyImage, type CopyResult } from '../../shared/copy/image-copy.js';
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

  let result: CopyResult;
  try {
    result = await copyImage(
      { client: src, ref: srcRef },
      { client: dst, ref: dstRef },
      { override: flags.override, chunkSize, concurrency, onEvent: view.onCopy },
    );
  } catch (err) {
    view.finish();
    const code = err instanceof ReplicatorError ? err.code : 'ERROR';
    const message = (err as Error).message;
    stderr.write(`harbor-replicator: copy ${formatReference(srcRef)} -> ${formatReference(dstRef)} failed: ${code}: ${message}\n`);
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ status: 'failed', source: formatReference(srcRef), destination: formatReference(dstRef), error: { code, message } })}\n`,
      );
    }
    return err instanceof UsageError ? EXIT.USAGE : EXIT.FAILED;
  }
  view.finish();
  if (flags.json) {
    const { status, source, destination, digest, bytes, blobs, seconds } = result;
    process.stdout.write(
      `${JSON.stringify({ status, source, destination, digest, bytes, blobs, seconds: round(seconds), ...(result.reason ? { reason: result.reason } : {}) })}\n`,
    );
  } else {
    process.stdout.write(`${summary(result)}\n`);
  }
  return EXIT.OK;
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
