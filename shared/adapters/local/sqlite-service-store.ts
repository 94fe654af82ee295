import type { Database } from 'better-sqlite3';
import type { DeliveryLog } from '../../executions/ports.js';
import type { ConfigStore } from '../../rules/ports.js';

type Kind = 'registry' | 'rule';

/**
 * Webhook deliveries and API-managed registries and rules, in the embedded state's SQLite file
 * (tables `deliveries` and `config`, see `sqlite-database.ts`).
 */
export class SqliteServiceStore implements DeliveryLog, ConfigStore {
  private readonly q: ReturnType<typeof statements>;

  constructor(
    db: Database,
    private readonly now: () => number = Date.now,
  ) {
    this.q = statements(db);
  }

  /** Forgets claims whose time is up (a claim is kept `ttlSeconds`; this keeps the table small). */
  pruneDeliveries(): number {
    return this.q.prune.run(this.nowSeconds()).changes;
  }

  async claimDelivery(key: string, ttlSeconds: number): Promise<boolean> {
    const now = this.nowSeconds();
    // A new key, or one whose claim has expired, is claimed afresh; a live claim is not.
    return this.q.claim.run(key, now + ttlSeconds, now).changes === 1;
  }

  async recordDelivery(key: string, executionIds: string[]): Promise<void> {
    this.q.record.run(key, JSON.stringify(executionIds));
  }

  async deliveryExecutions(key: string): Promise<string[]> {
    const text = this.q.delivery.get(key);
    return text === undefined ? [] : (JSON.parse(text) as string[]);
  }

  async releaseDelivery(key: string): Promise<void> {
    this.q.release.run(key);
  }

  async listEntries(kind: Kind): Promise<Array<Record<string, unknown>>> {
    return this.q.entries.all(kind).map((v) => JSON.parse(v) as Record<string, unknown>);
  }

  async getEntry(kind: Kind, name: string): Promise<Record<string, unknown> | undefined> {
    const text = this.q.entry.get(kind, name);
    return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  }

  async putEntry(kind: Kind, name: string, value: Record<string, unknown>, mode: 'create' | 'replace'): Promise<boolean> {
    const stmt = mode === 'create' ? this.q.create : this.q.replace;
    return stmt.run(JSON.stringify(value), kind, name).changes === 1;
  }

  async deleteEntry(kind: Kind, name: string): Promise<boolean> {
    return this.q.remove.run(kind, name).changes === 1;
  }

  private nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }
}

function statements(db: Database) {
  return {
    claim: db.prepare(
      `INSERT INTO deliveries (key, executions, expires) VALUES (?, '[]', ?)
       ON CONFLICT (key) DO UPDATE SET executions = '[]', expires = excluded.expires WHERE deliveries.expires IS NOT NULL AND deliveries.expires <= ?`,
    ),
    // Recording a delivery never claimed (not done by the engine) keeps it without expiry, as DynamoDB's item without TTL.
    record: db.prepare(`INSERT INTO deliveries (key, executions, expires) VALUES (?, ?, NULL) ON CONFLICT (key) DO UPDATE SET executions = excluded.executions`),
    delivery: db.prepare<string>('SELECT executions FROM deliveries WHERE key = ?').pluck(),
    release: db.prepare('DELETE FROM deliveries WHERE key = ?'),
    prune: db.prepare('DELETE FROM deliveries WHERE expires IS NOT NULL AND expires <= ?'),
    entries: db.prepare<string>('SELECT value FROM config WHERE kind = ? ORDER BY name').pluck(),
    entry: db.prepare<string>('SELECT value FROM config WHERE kind = ? AND name = ?').pluck(),
    create: db.prepare('INSERT INTO config (value, kind, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    replace: db.prepare('UPDATE config SET value = ? WHERE kind = ? AND name = ?'),
    remove: db.prepare('DELETE FROM config WHERE kind = ? AND name = ?'),
  };
}
