// How values are shown: times in the reader's locale, durations and sizes short.

/** A timestamp for a table cell (the reader's locale and time zone). */
export function formatTime(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString();
}

/** `850 ms`, `12 s`, `3 min 05 s`, `2 h 10 min`; running ones up to now. */
export function formatDuration(start: string | undefined, end: string | undefined, now = Date.now()): string {
  if (!start) return '—';
  const from = Date.parse(start);
  const to = end ? Date.parse(end) : now;
  if (Number.isNaN(from) || Number.isNaN(to)) return '—';
  const ms = Math.max(0, to - from);
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Bytes in binary units; `—` when the server did not say. */
export function formatBytes(n: number | undefined): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** `host/repository:tag1,tag2` (or the repository alone). */
export function formatRef(repository: string, tags: readonly string[], registry?: string): string {
  return `${registry ? `${registry}: ` : ''}${repository}${tags.length ? `:${tags.join(',')}` : ''}`;
}

/** A digest shortened for a cell (the whole one in its title). */
export function shortDigest(digest: string | null | undefined): string {
  if (!digest) return '—';
  const [alg, hex] = digest.split(':');
  return hex ? `${alg}:${hex.slice(0, 12)}` : digest;
}
