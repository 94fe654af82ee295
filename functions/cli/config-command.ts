import { speedBytesPerSecond, type RegistryConfig, type RuleConfig, type SecretRef } from '../../shared/rules/config-schema.js';
import { endpointOf } from '../../shared/rules/registry-endpoint.js';
import { formatBytes } from '../../shared/util/units.js';
import { parseEncryptionKey } from '../../shared/rules/sealed-secret.js';
import { resolveSecret } from '../../shared/rules/secrets.js';
import { loadConfigForCommand } from './config-file.js';
import { EXIT } from './exit-codes.js';

/** `harbor-replicator config check`: validates, checks secrets resolve, prints one line per rule. */
export async function runConfigCheck(opts: { config?: string }): Promise<number> {
  const loaded = await loadConfigForCommand(opts.config);
  if (!loaded) return EXIT.USAGE;
  const { config } = loaded;

  // Every secret must resolve (values are read, never printed); AWS ones resolve at run time.
  const refs: Array<[SecretRef, string]> = [];
  config.registries.forEach((r, i) => {
    if (r.credential && 'password' in r.credential) refs.push([r.credential.password, `registries[${i}].credential.password`]);
    if (r.api_token) refs.push([r.api_token, `registries[${i}].api_token`]);
  });
  if (config.webhook?.auth_header) refs.push([config.webhook.auth_header, 'webhook.auth_header']);
  if (config.api?.token) refs.push([config.api.token, 'api.token']);
  if (config.api?.read_token) refs.push([config.api.read_token, 'api.read_token']);
  const problems: string[] = [];
  for (const [ref, path] of refs) {
    if ('secret' in ref) continue;
    await resolveSecret(ref, path).catch((err: Error) => problems.push(err.message));
  }
  const key = config.api?.encryption_key;
  if (key && !('secret' in key)) {
    await resolveSecret(key, 'api.encryption_key')
      .then((value) => parseEncryptionKey(value))
      .catch((err: Error) => problems.push(err.message));
  }
  if (problems.length > 0) {
    process.stderr.write(`harbor-replicator: invalid config ${loaded.file}:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return EXIT.USAGE;
  }

  const out = process.stdout;
  out.write(`${loaded.file}: valid; ${config.registries.length} registr${config.registries.length === 1 ? 'y' : 'ies'}, ${config.rules.length} rule(s)\n`);
  for (const r of config.registries) out.write(`registry ${r.name}: ${describeRegistry(r)}\n`);
  for (const rule of config.rules) out.write(`rule ${rule.name}: ${describeRule(rule, loaded.source(rule), loaded.destination(rule))}\n`);
  // Earlier versions read `speed` as KB/s; it is Harbor's Kbps now (8x slower for the same number).
  const limited = config.rules.flatMap((r, i) => (r.speed > 0 ? [`rules[${i}].speed`] : []));
  if (limited.length > 0) {
    process.stderr.write(
      `harbor-replicator: note: ${limited.join(', ')}: speed is read in Kbps (kilobits per second), Harbor's unit; versions before 0.2 read it as KB/s, 8 times faster\n`,
    );
  }
  return EXIT.OK;
}

function describeRegistry(r: RegistryConfig): string {
  const e = endpointOf(r);
  const bits = [`${r.type} ${e.scheme}://${e.host}`];
  if (r.insecure) bits.push('TLS not verified');
  if (r.ca_file) bits.push(`CA ${r.ca_file}`);
  if (r.credential) bits.push('docker_config' in r.credential ? 'credentials from Docker config' : `user ${r.credential.username}`);
  return bits.join(', ');
}

/** One line a Harbor user reads at a glance. Never includes a secret. */
export function describeRule(rule: RuleConfig, src: RegistryConfig, dst: RegistryConfig): string {
  const parts = [`${src.name} -> ${dst.name}`];
  if (rule.dest_namespace) parts.push(`namespace "${rule.dest_namespace}" (replace count ${rule.dest_namespace_replace_count})`);
  const filters = rule.filters.map((f) => `${f.type} ${JSON.stringify(f.value ?? '')}${f.decoration === 'excludes' ? ' excluded' : ''}`);
  parts.push(filters.length ? `filters ${filters.join(', ')}` : 'no filters');
  const t = rule.trigger;
  parts.push(t.type === 'scheduled' ? `scheduled "${t.trigger_settings?.cron}" ${t.trigger_settings?.timezone ?? 'UTC'}` : t.type);
  if (rule.reconcile) parts.push(`reconcile "${rule.reconcile.cron}" ${rule.reconcile.timezone ?? 'UTC'}`);
  const flags = [
    rule.override ? 'override' : 'no override',
    rule.replicate_deletion ? 'replicate deletion' : '',
    rule.copy_by_chunk ? 'copy by chunk' : '',
    rule.speed > 0 ? `speed ${rule.speed} Kbps (${formatBytes(speedBytesPerSecond(rule.speed)!)}/s per task)` : '',
    rule.single_active_replication ? 'single active' : '',
    rule.include_untagged ? 'untagged included' : '',
    rule.platforms ? `platforms ${rule.platforms.join(',')}` : '',
    rule.enabled ? '' : 'DISABLED',
  ].filter(Boolean);
  parts.push(flags.join(', '));
  return parts.join('; ');
}
