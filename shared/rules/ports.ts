import type { RuleConfig } from './config-schema.js';

/**
 * The ports of rules and registries: secrets, API-managed config and schedules, with one class
 * per backend in shared/adapters/ (AWS Secrets Manager, EventBridge Scheduler; the local store).
 */

/** Reads named secrets (AWS Secrets Manager in the AWS deployment). */
export interface SecretStore {
  /** The secret's string value; throws when it does not exist or cannot be read. */
  get(nameOrArn: string): Promise<string>;
}

/** Writes named secrets (AWS Secrets Manager: the API keeps literal credentials there). */
export interface SecretWriter {
  /** Creates the secret, or puts a new value in it when it exists; `tags` are set on creation. */
  put(name: string, value: string, tags?: Record<string, string>): Promise<void>;
}

/** Registries and rules managed through the API (the config file's are read-only). */
export interface ConfigStore {
  listEntries(kind: 'registry' | 'rule'): Promise<Array<Record<string, unknown>>>;
  getEntry(kind: 'registry' | 'rule', name: string): Promise<Record<string, unknown> | undefined>;
  /** Creates (`create`: fails when it exists) or replaces an entry. */
  putEntry(kind: 'registry' | 'rule', name: string, value: Record<string, unknown>, mode: 'create' | 'replace'): Promise<boolean>;
  deleteEntry(kind: 'registry' | 'rule', name: string): Promise<boolean>;
}

/**
 * Schedules of scheduled rules run by a service outside the process (EventBridge Scheduler on
 * AWS). Only the schedules this store manages are touched (those of rules created through the
 * API); the config file's rules get theirs from the deployment.
 */
export interface ScheduleStore {
  /** Makes the managed schedules match the enabled rules in `rules`: scheduled triggers and `reconcile:` schedules. */
  sync(rules: readonly RuleConfig[]): Promise<{ created: string[]; updated: string[]; deleted: string[] }>;
}
