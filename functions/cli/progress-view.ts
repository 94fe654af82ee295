import type cliProgress from 'cli-progress';
import type { CopyEvent, CopyListener } from '../../shared/copy/progress.js';
import type { ReferrerEvent } from '../../shared/copy/referrers.js';
import type { HttpEvent } from '../../shared/registry/http.js';
import { formatBytes } from '../../shared/util/units.js';

/** Where progress goes and how it looks. */
export interface ProgressViewOptions {
  out: NodeJS.WriteStream;
  /** Draw a bar (a terminal) or print plain lines (a log, a pipe). */
  tty: boolean;
  quiet: boolean;
  debug: boolean;
  /** The bar library, loaded by the caller only for a TTY (it costs start-up time). */
  bars?: typeof cliProgress | undefined;
}

/** The CLI's rendering of engine events; `finish()` clears the bar. */
export interface ProgressView {
  onCopy: CopyListener;
  onHttp: (e: HttpEvent) => void;
  /** One referrer (signature, SBOM, attestation) handled. */
  onReferrer: (e: ReferrerEvent) => void;
  finish(): void;
}

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

/**
 * Renders copy progress on stderr: a bar (bytes, blobs, rate) on a TTY, one line per step
 * otherwise. Retries always show; every request shows with `--debug` (URLs are redacted).
 */
export function createProgressView(opts: ProgressViewOptions): ProgressView {
  const perBlob = new Map<string, number>();
  let done = 0;
  let total = 0;
  let blobs = 0;
  let blobsDone = 0;
  let multi: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  const line = (text: string) => {
    if (multi) multi.log(`${text}\n`);
    else opts.out.write(`${text}\n`);
  };
  const setBlob = (digest: string, bytes: number) => {
    done += bytes - (perBlob.get(digest) ?? 0);
    perBlob.set(digest, bytes);
  };
  let started = 0;
  const redraw = () => {
    if (!bar) return;
    const seconds = (Date.now() - started) / 1000;
    const speed = seconds > 0.2 ? `${formatBytes(done / seconds)}/s` : '';
    bar.update(Math.min(done, total), { blobs: `${blobsDone}/${blobs}`, doneH: formatBytes(Math.min(done, total)), speed });
  };

  const onCopy = (e: CopyEvent) => {
    if (opts.quiet && e.kind !== 'retry') return;
    switch (e.kind) {
      case 'plan':
        total = e.bytes;
        blobs = e.blobs;
        started = Date.now();
        if (opts.tty && opts.bars) {
          const cliProgress = opts.bars;
          multi = new cliProgress.MultiBar(
            {
              stream: opts.out,
              format: ' {bar} {percentage}% | {doneH} / {totalH} | blobs {blobs} | {speed}',
              hideCursor: true,
              clearOnComplete: true,
              fps: 10,
              barsize: 30,
            },
            cliProgress.Presets.shades_classic,
          );
          bar = multi.create(Math.max(total, 1), 0, { blobs: `0/${blobs}`, doneH: '0 B', totalH: formatBytes(total), speed: '' });
        } else {
          line(`plan: ${e.manifests} manifest(s), ${e.blobs} blob(s), ${formatBytes(e.bytes)} at most (${short(e.digest)})`);
        }
        break;
      case 'blob-progress':
        setBlob(e.digest, e.done);
        redraw();
        break;
      case 'blob-done':
        blobsDone += 1;
        setBlob(e.digest, e.size);
        redraw();
        if (!opts.tty) line(`blob ${short(e.digest)} ${formatBytes(e.size)} ${e.outcome}`);
        break;
      case 'manifest-pushed':
        if (!opts.tty) line(`manifest ${short(e.digest)} pushed as ${e.reference.startsWith('sha256:') ? short(e.reference) : e.reference}`);
        break;
      case 'retry':
        line(`retry: ${e.what} (attempt ${e.attempt}): ${e.reason}`);
        break;
      case 'blob-start':
      case 'resolved':
        break;
    }
  };

  let rateLimitWarned = false;
  const onHttp = (e: HttpEvent) => {
    if (e.kind === 'retry') line(`retry: ${e.method} ${e.url} in ${(e.delayMs / 1000).toFixed(1)}s (attempt ${e.attempt}): ${e.reason}`);
    else {
      const rl = e.rateLimit;
      const budget = rl ? ` [rate limit ${rl.remaining}${rl.limit !== undefined ? `/${rl.limit}` : ''} left${rl.windowSeconds ? ` per ${rl.windowSeconds}s` : ''}]` : '';
      if (opts.debug) line(`debug: ${e.method} ${e.url} -> ${e.status} (${e.ms} ms)${budget}`);
      else if (rl && rl.remaining === 0 && !rateLimitWarned) {
        // Docker Hub's pull budget is spent: the next pulls will get 429 until the window moves.
        rateLimitWarned = true;
        line(`warning: ${new URL(e.url).host} rate limit reached (ratelimit-remaining: 0${rl.limit !== undefined ? ` of ${rl.limit}` : ''})`);
      }
    }
  };

  const onReferrer = (e: ReferrerEvent) => {
    if (opts.quiet && e.status !== 'failed') return;
    const what = `${e.digest ? short(e.digest) : e.tag}${e.tag && e.digest ? ` (${e.tag})` : ''}`;
    line(`referrer ${what} ${e.artifactType ?? ''} of ${short(e.subject)}: ${e.status}${e.error ? `: ${e.error}` : ''}`.replace(/ {2,}/g, ' '));
  };

  return {
    onCopy,
    onHttp,
    onReferrer,
    finish: () => {
      multi?.stop();
      multi = undefined;
      bar = undefined;
    },
  };
}
