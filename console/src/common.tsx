import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { ApiError } from './api';
import type { Counts, ExecutionStatus, TaskStatus } from './types';

/** An error from the API, as a sentence with its code; `role=alert` so it is announced. */
export function ErrorNote({ error, what }: { error: ApiError | undefined; what?: string }) {
  if (!error) return null;
  const status = error.status ? ` (HTTP ${error.status})` : '';
  return (
    <p class="error" role="alert">
      {what ? `${what}: ` : ''}
      {error.message} <code>{error.code}</code>
      {status}
    </p>
  );
}

const STATUS_CLASS: Record<string, string> = {
  Succeed: 'ok',
  Success: 'ok',
  Failed: 'bad',
  Error: 'bad',
  Stopped: 'muted',
  InProgress: 'busy',
  Running: 'busy',
  Pending: 'wait',
  Scheduled: 'wait',
};

/** A status as a word with a colour (the word carries the meaning; the colour only helps). */
export function Status({ status }: { status: ExecutionStatus | TaskStatus | string }) {
  return <span class={`status ${STATUS_CLASS[status] ?? ''}`}>{status}</span>;
}

/** Tasks done out of all, as a bar and in words. */
export function Progress({ counts, label }: { counts: Counts; label: string }) {
  const done = counts.succeed + counts.failed + counts.stopped;
  return (
    <span class="progress">
      <progress max={Math.max(counts.total, 1)} value={counts.total ? done : 0} aria-label={label} />
      <span>
        {done}/{counts.total}
      </span>
    </span>
  );
}

/** Counts by status, in words. */
export function CountsText({ counts }: { counts: Counts }) {
  const running = counts.pending + counts.scheduled + counts.running;
  return (
    <span class="counts">
      {counts.succeed} succeeded, {counts.failed} failed, {counts.stopped} stopped{running ? `, ${running} to go` : ''} of {counts.total}
    </span>
  );
}

/** Text for screen readers only (a button's target, after its visible verb). */
export function Hidden({ children }: { children: ComponentChildren }) {
  return <span class="visually-hidden">{children}</span>;
}

/** Previous/next page over cursors (the API's are forward-only: earlier ones are kept here). */
export function Pager({ label, hasPrevious, next, onPrevious, onNext }: { label: string; hasPrevious: boolean; next: string | null | undefined; onPrevious: () => void; onNext: (cursor: string) => void }) {
  if (!hasPrevious && !next) return null;
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" disabled={!hasPrevious} onClick={onPrevious}>
        Previous page
      </button>
      <button type="button" disabled={!next} onClick={() => next && onNext(next)}>
        Next page
      </button>
    </nav>
  );
}

/** A page's heading: sets the document title, and takes focus when the page opens (so a screen reader starts there). */
export function PageTitle({ children, title }: { children: ComponentChildren; title: string }) {
  const h1 = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · harbor-replicator`;
  }, [title]);
  useEffect(() => {
    h1.current?.focus({ preventScroll: true });
  }, []);
  return (
    <h1 ref={h1} tabIndex={-1}>
      {children}
    </h1>
  );
}

/** A status filter: "Any status", or one of `statuses`. */
export function StatusFilter({ value, statuses, onChange }: { value: string; statuses: readonly string[]; onChange: (status: string) => void }) {
  return (
    <label>
      Status
      <select value={value} onChange={(ev) => onChange(ev.currentTarget.value)}>
        <option value="">Any status</option>
        {statuses.map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
    </label>
  );
}
