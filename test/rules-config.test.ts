// The config file: one schema for the product, Harbor's field names, errors that name the
// path, the bad value and what is allowed; secrets never echoed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../shared/rules/load-config.js';
import { checkCron } from '../shared/rules/cron.js';

const registries = `
registries:
  - {name: hq, type: harbor, url: https://harbor.example.com, credential: {username: robot, password: {env: HQ_PASSWORD}}}
  - {name: branch, type: docker-registry, url: http://10.0.0.5:5000}
`;

/** The config's problems, one line each (or [] when valid). */
function problems(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml');
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues;
  }
}

describe('config file', () => {
  it('reads a policy exported from Harbor\'s API as is (ReplicationPolicy, with registry objects)', () => {
    // Shape of GET /api/v2.0/replication/policies (swagger ReplicationPolicy, Registry, ReplicationFilter).
    const exported = {
      id: 7,
      name: 'mirror-library',
      description: 'to the branch office',
      src_registry: { id: 3, name: 'hq', type: 'harbor', url: 'https://harbor.example.com', insecure: false, status: 'healthy' },
      dest_registry: { id: 4, name: 'branch', type: 'docker-registry', url: 'http://10.0.0.5:5000' },
      dest_namespace: 'mirror',
      dest_namespace_replace_count: 1,
      trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 2 * * *' } },
      filters: [
        { type: 'name', value: 'library/**' },
        { type: 'tag', value: 'v*', decoration: 'matches' },
        { type: 'label', value: ['prod'], decoration: 'excludes' },
        { type: 'resource', value: 'image' },
      ],
      replicate_deletion: false,
      deletion: false,
      override: true,
      enabled: true,
      creation_time: '2026-01-01T00:00:00.000Z',
      update_time: '2026-01-02T00:00:00.000Z',
      speed: -1,
      copy_by_chunk: false,
      single_active_replication: false,
    };
    const loaded = parseConfig(`${registries}\nrules: [${JSON.stringify(exported)}]`, 'test.yaml');
    const rule = loaded.rule('mirror-library');
    assert.equal(loaded.source(rule).name, 'hq');
    assert.equal(loaded.destination(rule).type, 'docker-registry');
    assert.equal(rule.trigger.type, 'scheduled');
    assert.equal(rule.include_untagged, false, 'our extensions default off');
  });

  it('Harbor\'s "Local" side of an exported policy (null, absent, {id: 0}, {name: "Local"}) is the registry local_registry names', () => {
    const exported = (side: Record<string, unknown>) =>
      `${registries}\nlocal_registry: hq\nrules:\n  - ${JSON.stringify({ name: 'from-local', dest_registry: { id: 4, name: 'branch' }, ...side })}\n`;
    for (const src of [{ src_registry: null }, {}, { src_registry: { id: 0, name: '' } }, { src_registry: { id: 0 } }, { src_registry: { name: 'Local', id: 0, type: 'harbor' } }]) {
      const loaded = parseConfig(exported(src), 'export.yaml');
      assert.equal(loaded.source(loaded.rule('from-local')).name, 'hq', JSON.stringify(src));
      assert.equal(loaded.destination(loaded.rule('from-local')).name, 'branch');
    }
    // Pushing from elsewhere into the Local Harbor.
    const push = parseConfig(`${registries}\nlocal_registry: hq\nrules: [{name: to-local, src_registry: branch, dest_registry: null}]\n`, 'export.yaml');
    assert.equal(push.destination(push.rule('to-local')).name, 'hq');
    // Without local_registry, "Local" cannot be resolved: the error says what to add.
    assert.deepEqual(problems(`${registries}\nrules: [{name: from-local, src_registry: null, dest_registry: branch}]`), [
      'rules[0].src_registry: Harbor\'s "Local" registry (the Harbor this policy was exported from); name it with local_registry: <registry name> at the top of the config',
    ]);
    assert.match(problems(`${registries}\nlocal_registry: nope\nrules: []`)[0]!, /^local_registry: no registry named "nope"/);
    assert.match(problems(`${registries}\nrules: [{name: r, src_registry: {id: 5}, dest_registry: branch}]`)[0]!, /^rules\[0\]\.src_registry: a registry object needs its "name"/);
  });

  it('JSON is accepted, and defaults follow Harbor (override on, enabled, replace count -1, manual)', () => {
    const loaded = parseConfig(
      JSON.stringify({
        registries: [{ name: 'a', type: 'docker-registry', url: 'http://a:5000' }],
        rules: [{ name: 'r', src_registry: 'a', dest_registry: 'a' }],
      }),
      'c.json',
    );
    const r = loaded.rule('r');
    assert.deepEqual(
      [r.override, r.enabled, r.dest_namespace_replace_count, r.trigger.type, r.speed, r.concurrency],
      [true, true, -1, 'manual', -1, 4],
    );
  });

  it('names the path, the bad value and what is allowed', () => {
    const issues = problems(`${registries}
rules:
  - {name: a, src_registry: hq, dest_registry: branch}
  - {name: b, src_registry: hq, dest_registry: branch}
  - name: c
    src_registry: hq
    dest_registry: branch
    filters:
      - {type: tag, value: "x", decoration: include}
`);
    assert.deepEqual(issues, ['rules[2].filters[0].decoration: Invalid option: expected one of "matches"|"excludes" (got "include")']);
  });

  it('reports every problem at once: unknown fields, types, URLs, registry names', () => {
    const issues = problems(`
registries:
  - {name: hq, type: harbour, url: ftp://x}
rules:
  - {name: r, src_registry: hq, dest_registry: hq, overide: true}
`);
    assert.deepEqual(issues, [
      'registries[0].type: Invalid option: expected one of "harbor"|"docker-registry"|"docker-hub"|"google-gcr"|"artifact-registry"|"aws-ecr"|"github-ghcr"|"azure-acr"|"ali-acr"|"huawei-SWR"|"tencent-tcr"|"jfrog-artifactory"|"quay"|"gitlab"|"dtr"|"volcengine-cr" (got "harbour")',
      'registries[0].url: must be an http:// or https:// URL (got "ftp://x")',
      'rules[0]: unknown field "overide"',
    ]);
    assert.deepEqual(problems(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: nowhere}]`), [
      'rules[0].dest_registry: no registry named "nowhere" (registries: "hq", "branch")',
    ]);
    assert.deepEqual(problems(`${registries}\n  - {name: hq, type: docker-hub}`), ['registries[2].name: "hq" is defined twice']);
  });

  it('never echoes a secret, and wants references, not literal secrets', () => {
    const issues = problems(`
registries:
  - {name: hq, type: harbor, url: https://h, credential: {username: robot, password: "hunter2-literal"}}
webhook: {auth_header: "Bearer s3cr3t-literal"}
`);
    assert.equal(issues.length, 2);
    for (const i of issues) assert.ok(!i.includes('hunter2') && !i.includes('s3cr3t'), i);
    assert.match(issues[0]!, /^registries\[0\]\.credential: must be \{username, password: <secret reference>\} or \{docker_config: true\}/);
    assert.match(issues[1]!, /^webhook\.auth_header: must be a secret reference: \{env: NAME\}, \{file: PATH\} or \{secret: NAME_OR_ARN\}/);
  });

  it('checks cron and time zone at load, with the rule path', () => {
    const at = (cron: string, tz = 'UTC') =>
      problems(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: branch, trigger: {type: scheduled, trigger_settings: {cron: "${cron}", timezone: ${tz}}}}]`);
    assert.deepEqual(at('0 0 2 * * *', 'Europe/Paris'), []);
    assert.deepEqual(at('30 2 * * 1-5'), []);
    assert.match(at('0 0 2 * * * 2030')[0]!, /^rules\[0\]\.trigger\.trigger_settings\.cron: cron "0 0 2 \* \* \* 2030" has 7 fields; expected 5/);
    assert.match(at('5 0 2 * * *')[0]!, /seconds field must be 0/);
    assert.match(at('0 99 * * *')[0]!, /Invalid value for hour: 99/);
    assert.match(at('0 0 2 * *', 'Mars/Base')[0]!, /^rules\[0\]\.trigger\.trigger_settings\.timezone: unknown time zone "Mars\/Base"/);
    // Valid grammar, impossible date: it would never fire. Feb 29 fires within four years.
    assert.match(at('0 0 0 31 2 *')[0]!, /^rules\[0\]\.trigger\.trigger_settings\.cron: cron "0 0 0 31 2 \*" never fires in the next 5 years/);
    assert.match(at('0 0 31 4 *')[0]!, /never fires in the next 5 years/);
    assert.deepEqual(at('0 0 0 29 2 *'), []);
    assert.equal(checkCron('0 0 29 2 *', 'UTC', Date.parse('2029-03-01T00:00:00Z')), undefined);
    assert.deepEqual(problems(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: branch, trigger: {type: scheduled}}]`), [
      'rules[0].trigger.trigger_settings.cron: a scheduled trigger needs trigger_settings.cron',
    ]);
  });

  it('a rule\'s reconcile: {cron, timezone} is checked as a scheduled trigger\'s cron is, with its path; any trigger may have one', () => {
    const at = (reconcile: string, trigger = '{type: event_based}') =>
      problems(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: branch, trigger: ${trigger}, reconcile: ${reconcile}}]`);
    assert.deepEqual(at('{cron: "0 30 3 * * *", timezone: Europe/Berlin}'), []);
    assert.deepEqual(at('{cron: "15 4 * * 0"}', '{type: manual}'), []);
    assert.deepEqual(at('{cron: "0 0 4 * * *"}', '{type: scheduled, trigger_settings: {cron: "0 0 2 * * *"}}'), []);
    assert.match(at('{cron: "5 0 2 * * *"}')[0]!, /^rules\[0\]\.reconcile\.cron: cron "5 0 2 \* \* \*": the seconds field must be 0/);
    assert.match(at('{cron: "* 3 * * *"}')[0]!, /^rules\[0\]\.reconcile\.cron: .*"\*" is not allowed in the minutes field/);
    assert.match(at('{cron: "0 0 0 31 2 *"}')[0]!, /^rules\[0\]\.reconcile\.cron: cron "0 0 0 31 2 \*" never fires in the next 5 years/);
    assert.match(at('{cron: "0 3 * * *", timezone: Mars/Base}')[0]!, /^rules\[0\]\.reconcile\.timezone: unknown time zone "Mars\/Base"/);
    assert.match(at('{timezone: UTC}')[0]!, /^rules\[0\]\.reconcile\.cron: /);
    assert.match(at('{cron: "0 3 * * *", every: day}')[0]!, /^rules\[0\]\.reconcile: .*every/);
    assert.equal(parseConfig(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: branch}]`, 't.yaml').config.rules[0]!.reconcile, undefined, 'optional');
  });

  it("refuses Harbor's forbidden combinations", () => {
    assert.deepEqual(
      problems(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: branch, single_active_replication: true, trigger: {type: event_based}}]`),
      ['rules[0].single_active_replication: single_active_replication is not allowed with an event_based trigger (as in Harbor) (got true)'],
    );
    assert.match(checkCron('0 * * * * *', 'UTC')?.message ?? '', /"\*" is not allowed in the minutes field/);
    assert.match(problems(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: branch, dest_namespace: "Mirror/"}]`)[0]!, /^rules\[0\]\.dest_namespace: must be a lowercase repository path/);
    assert.match(problems(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: branch, filters: [{type: name, value: [a, b]}]}]`)[0]!, /^rules\[0\]\.filters\[0\]\.value: a name filter takes one pattern/);
    assert.match(problems(`${registries}\nrules: [{name: r, src_registry: hq, dest_registry: branch, filters: [{type: resource, value: chart}]}]`)[0]!, /a resource filter is "image" or "artifact"/);
  });

  it('refuses a YAML alias bomb as a config error, without expanding it', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    const found = problems(levels.join('\n'));
    assert.equal(found.length, 1);
    assert.match(found[0]!, /^\(top level\): Excessive alias count/);
  });

  it('reports YAML syntax errors with their position', () => {
    assert.match(problems('registries: [ {name: a')[0]!, /line 1, column/);
  });
});
