import type { CopyEvent } from '../copy/progress.js';
import type { ReferrerEvent } from '../copy/referrers.js';
import { redactUrl } from '../registry/errors.js';
import type { HttpEvent } from '../registry/http.js';
import { formatBytes } from '../util/units.js';
import { FINAL_TASK, type Task, type TaskRef } from './model.js';
import type { TaskStore } from './ports.js';
import type { TaskEvent } from './transitions.js';

/**
 * A task's log: a short account of what each of its runs did, for a person looking at a failed
 * replication (Harbor keeps one per task too). One line per step:
 *
 *     <RFC 3339 time> <level> <step> <message> key=value...
 *
 * e.g. `2026-11-23T02:00:01.250Z warn blob retried after HTTP 429, waiting 2.0 s method=PUT url=...`.
 * Values with spaces, quotes or `=` are JSON strings; a line holds no newline and at most
 * TASK_LOG_LINE_MAX_BYTES. A task keeps its newest TASK_LOG_MAX_LINES lines within
 * TASK_LOG_MAX_BYTES, across all its runs (retries, continuations): the oldest go first.
 *
 * A run's lines are kept in memory by `TaskRunLog` (bounded the same way) and written with the
 * task once, when the run ends or hands over (`TaskStore.appendTaskLog`), never on each move.
 * Nothing secret gets in: the events carry redacted URLs, and every text is scrubbed again here
 * (URLs through `redactUrl`, `Bearer`/`Basic` credentials and JWTs replaced).
 */

/** How bad a line is. */
export type TaskLogLevel = 'info' | 'warn' | 'error';

/**
 * What a line is about: the run itself (`task`), the source resolved to a digest (`resolve`),
 * one blob, the manifest PUTs, the referrers of the artifact (`referrers`, for the referrer
 * copy), a deletion, or a request outside all of those (`http`).
 */
export type TaskLogStep = 'task' | 'resolve' | 'blob' | 'manifest' | 'referrers' | 'delete' | 'http';

/** Lines a task's log keeps at most (the newest). */
export const TASK_LOG_MAX_LINES = 200;
/** Bytes a task's log keeps at most (UTF-8, a newline after each line). */
export const TASK_LOG_MAX_BYTES = 64 * 1024;
/** A longer line is cut (a registry's error text): one line never crowds out the others. */
export const TASK_LOG_LINE_MAX_BYTES = 2048;

export type { TaskLogSegment } from './model.js';

/** Bytes a line takes in the log (with its newline). */
export function lineBytes(line: string): number {
  return Buffer.byteLength(line, 'utf8') + 1;
}

/** The newest lines of `lines` (oldest first) that fit TASK_LOG_MAX_LINES and TASK_LOG_MAX_BYTES. */
export function boundLog(lines: readonly string[]): string[] {
  let bytes = 0;
  let start = lines.length;
  while (start > 0 && lines.length - start < TASK_LOG_MAX_LINES) {
    const size = lineBytes(lines[start - 1]!);
    if (bytes + size > TASK_LOG_MAX_BYTES) break;
    bytes += size;
    start--;
  }
  return lines.slice(start);
}

/** A segment as a store keeps it: its lines as one text (a newline between lines), counted. */
export function segmentRecord(lines: readonly string[]): { text: string; lines: number; bytes: number } {
  const clean = lines.map((l) => l.replace(/[\r\n]+/g, ' '));
  return { text: clean.join('\n'), lines: clean.length, bytes: clean.reduce((n, l) => n + lineBytes(l), 0) };
}

/** The lines of a stored segment's text. */
export function segmentLines(text: string): string[] {
  return text === '' ? [] : text.split('\n');
}

/**
 * Of a task's stored segments, the runs nothing of which can be shown any more: the newer ones
 * already fill the line or byte bound. A store deletes them, so a task run many times (retries,
 * continuations) keeps about one bound's worth, not one per run.
 */
export function shadowedRuns(segments: ReadonlyArray<{ run: number; lines: number; bytes: number }>): number[] {
  let lines = 0;
  let bytes = 0;
  const gone: number[] = [];
  for (const s of [...segments].sort((a, b) => b.run - a.run)) {
    if (lines >= TASK_LOG_MAX_LINES || bytes >= TASK_LOG_MAX_BYTES) gone.push(s.run);
    lines += s.lines;
    bytes += s.bytes;
  }
  return gone;
}

const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>]+/gi;
const CREDENTIAL_IN_TEXT = /\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi;
const JWT_IN_TEXT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/**
 * A text made safe for a log line: URLs redacted (userinfo, signatures and tokens in the query),
 * `Bearer`/`Basic` credentials and JWTs replaced, control characters turned into spaces.
 */
export function scrub(text: string): string {
  return text
    .replace(URL_IN_TEXT, (u) => redactUrl(u))
    .replace(CREDENTIAL_IN_TEXT, '$1 REDACTED')
    .replace(JWT_IN_TEXT, 'REDACTED')
    .replace(/[\u0000-\u001f\u007f]+/g, ' ');
}

/** A field's value: bare when it is one word, else a JSON string. */
function fieldValue(v: string): string {
  return /^[^\s"=\\]+$/.test(v) ? v : JSON.stringify(v);
}

/** Cuts a line to TASK_LOG_LINE_MAX_BYTES (on a character boundary), marking the cut. */
function cut(line: string): string {
  if (Buffer.byteLength(line, 'utf8') + 1 <= TASK_LOG_LINE_MAX_BYTES) return line;
  const head = Buffer.from(line, 'utf8').subarray(0, TASK_LOG_LINE_MAX_BYTES - 5).toString('utf8').replace(/\uFFFD+$/, '');
  return `${head}...`;
}

/** Field values a line takes (undefined and empty ones are left out). */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** One line: `<RFC 3339 time> <level> <step> <message> key=value...`, scrubbed and bounded. */
export function formatLogLine(at: number, level: TaskLogLevel, step: TaskLogStep, message: string, fields: LogFields = {}): string {
  const parts = [new Date(at).toISOString(), level, step, scrub(message).trim() || '-'];
  for (const [key, v] of Object.entries(fields)) {
    if (v === undefined || v === '') continue;
    parts.push(`${key}=${fieldValue(scrub(String(v)))}`);
  }
  return cut(parts.join(' '));
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const ref = (r: TaskRef, digest: string | undefined) => `${r.registry}/${r.repository}${r.tags.length ? `:${r.tags.join(',')}` : digest ? `@${digest}` : ''}`;

/** The step of a request, from its path (the spec's routes). */
function stepOfRequest(method: string, url: string): TaskLogStep {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return 'http';
  }
  if (/\/referrers\//.test(path)) return 'referrers';
  if (/\/blobs\//.test(path)) return 'blob';
  if (/\/manifests\//.test(path)) return method === 'PUT' ? 'manifest' : method === 'DELETE' ? 'delete' : 'resolve';
  return 'http';
}

/**
 * The log of one run of a task, fed by the worker: the run's start and end (its last move), the
 * copy's progress events and the HTTP retries of its own requests. Bounded as it goes; saved
 * once with `save`.
 */
export class TaskRunLog {
  private readonly kept: string[] = [];
  private bytes = 0;
  private readonly blobStarted = new Map<string, number>();
  private saved = false;
  private first = false;

  constructor(
    private readonly task: Task,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds a line (the referrer copy logs its own steps through this, with step `referrers`). */
  add(level: TaskLogLevel, step: TaskLogStep, message: string, fields?: LogFields): void {
    const line = formatLogLine(this.now(), level, step, message, fields);
    this.kept.push(line);
    this.bytes += lineBytes(line);
    while (this.kept.length > TASK_LOG_MAX_LINES || this.bytes > TASK_LOG_MAX_BYTES) this.bytes -= lineBytes(this.kept.shift()!);
  }

  /** The run's lines so far, oldest first. */
  lines(): string[] {
    return [...this.kept];
  }

  /** The run has the task (its claim applied). */
  started(continuation: boolean): void {
    const t = this.task;
    this.first = !continuation && t.attempts <= 1;
    this.add('info', 'task', continuation ? 'run continues a handed-over one' : 'run started', {
      attempt: t.attempts,
      operation: t.operation,
      source: ref(t.source, t.digest),
      destination: t.destination.repository ? ref(t.destination, t.digest) : undefined,
      digest: t.digest,
    });
  }

  /** One progress event of the copy. */
  copy(e: CopyEvent): void {
    switch (e.kind) {
      case 'resolved':
        this.add('info', 'resolve', `resolved ${e.source}`, { digest: e.digest, media_type: e.mediaType, destination: e.destination, at_destination: e.destinationDigest ?? 'none' });
        break;
      case 'plan':
        this.add('info', 'resolve', `to copy: ${e.manifests} manifest(s), ${e.blobs} blob(s), ${formatBytes(e.bytes)} at most`, { digest: e.digest });
        break;
      case 'blob-start':
        this.blobStarted.set(e.digest, this.now());
        if (e.resumedAt !== undefined) this.add('info', 'blob', `resumed at offset ${e.resumedAt}`, { digest: e.digest, size: e.size });
        break;
      case 'blob-done': {
        const since = this.blobStarted.get(e.digest);
        this.blobStarted.delete(e.digest);
        const message = e.outcome === 'copied' ? 'uploaded' : e.outcome === 'mounted' ? 'mounted from another repository' : 'present at the destination (HEAD)';
        this.add('info', 'blob', message, { digest: e.digest, size: e.size, ms: since === undefined ? undefined : this.now() - since });
        break;
      }
      case 'manifest-pushed':
        this.add('info', 'manifest', `PUT ${e.reference}`, { digest: e.digest, media_type: e.mediaType });
        break;
      case 'retry': {
        const after = e.status !== undefined ? ` after HTTP ${e.status}` : '';
        const waiting = e.delayMs > 0 ? `, waiting ${seconds(e.delayMs)}` : '';
        this.add('warn', 'blob', `retried${after}${waiting}: ${e.what}`, { attempt: e.attempt, reason: e.reason });
        break;
      }
      case 'blob-progress':
        break;
      default:
        break; // kinds added later log nothing until they are given a line here
    }
  }

  /** One referrer of the artifact handled (signatures, attestations, SBOMs, Harbor's accessories). */
  referrer(e: ReferrerEvent): void {
    const what = e.tag ?? e.digest ?? 'a referrer';
    const fields = { digest: e.digest, artifact_type: e.artifactType, via: e.via, subject: e.subject, depth: e.depth > 0 ? e.depth : undefined };
    switch (e.status) {
      case 'copied':
        this.add('info', 'referrers', `copied ${what}`, fields);
        break;
      case 'in_sync':
        this.add('info', 'referrers', `${what} already at the destination`, fields);
        break;
      case 'kept':
        this.add('info', 'referrers', `${what} left as it is: the destination has another of its own there`, fields);
        break;
      case 'failed':
        this.add('error', 'referrers', `${what} failed: ${e.error ?? 'unknown error'}`, fields);
        break;
    }
  }

  /** An HTTP event of one of the run's own requests: its retries are logged. */
  http(e: HttpEvent): void {
    if (e.kind !== 'retry') return;
    const after = e.status !== undefined ? `HTTP ${e.status}` : 'a connection failure';
    this.add('warn', stepOfRequest(e.method, e.url), `retried after ${after}, waiting ${seconds(e.delayMs)}`, {
      method: e.method,
      url: e.url,
      attempt: e.attempt,
      reason: e.reason,
    });
  }

  /** The run's last move, and whether it applied (else the task had been taken over). */
  ended(e: TaskEvent, applied: boolean): void {
    if (!applied) {
      this.add('warn', 'task', `lease lost: another worker has the task; this run's ${e.kind} was not recorded`);
      return;
    }
    const deletion = this.task.operation === 'deletion';
    switch (e.kind) {
      case 'succeed':
        if (deletion) this.add('info', 'delete', e.text || 'deleted', { digest: this.task.digest });
        this.add('info', 'task', 'ended Success', { bytes: e.bytes, note: deletion ? undefined : e.text });
        break;
      case 'fail':
        this.add('error', 'task', `ended Error: ${e.text}`, { code: e.error.code });
        break;
      case 'retry':
        this.add('warn', 'task', `run failed, retrying in ${seconds(e.delayMs)}`, { code: e.error.code, reason: e.error.message });
        break;
      case 'handover':
        this.add('info', 'task', `handed over: ${e.text}`, { uploads: e.checkpoint.length });
        break;
      case 'handBack':
        this.add('info', 'task', 'handed back at shutdown: runs again after the restart');
        break;
      case 'stopRunning':
        this.add('info', 'task', 'ended Stopped (stop requested)');
        break;
      default:
        this.add('info', 'task', `ended by ${e.kind}`);
    }
  }

  /** The lease was taken over while the run copied: it stopped and wrote nothing else. */
  leaseLost(): void {
    this.add('warn', 'task', 'lease lost: another worker has the task; this run stopped');
  }

  /**
   * Writes the run's lines with the task, once (later calls do nothing). Never throws: a log
   * that cannot be written must not change what happens to the task.
   */
  async save(store: Pick<TaskStore, 'appendTaskLog'>, outcome: { status?: Task['status'] } = {}): Promise<boolean> {
    if (this.saved) return false;
    this.saved = true;
    if (this.kept.length === 0) return false;
    try {
      const final = outcome.status !== undefined && FINAL_TASK.has(outcome.status);
      await store.appendTaskLog(this.task.executionId, this.task.id, { run: this.task.revision, lines: this.lines(), final, first: this.first });
      return true;
    } catch {
      return false;
    }
  }
}
