// Harbor's replication semantics, table by table: patterns (doublestar v1.3.4 as in
// pkg/reg/util/pattern.go), filters (pkg/reg/filter), destination names (replaceNamespace in
// controller/replication/flow/stage.go) and each destination type's path rule
// (SupportedRepositoryPathComponentType). Harbor source read at goharbor/harbor c50c7ddd.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FilterConfig } from '../shared/rules/config-schema.js';
import { DestinationNameError, destinationRepository, pathRuleOf } from '../shared/rules/destination.js';
import { RuleFilter } from '../shared/rules/filters.js';
import { matchPattern, specificNames } from '../shared/harbor/patterns.js';

describe('patterns match as doublestar v1.3.4 does', () => {
  // Rows from doublestar's own test table, and the filters Harbor users write.
  const table: Array<[string, string, boolean]> = [
    ['', 'anything/at/all', true], // empty pattern matches all
    ['*', '', true],
    ['*', '/', false],
    ['a*', 'ab/c', false], // * does not cross /
    ['a/**', 'a', false],
    ['a/**', 'a/b/c', true], // ** does
    ['**/c', 'c', true],
    ['a/**/b', 'a/b', true],
    ['a{,bc}', 'a', true],
    ['{a/{b,c},abc}', 'a/b', true],
    ['abc**', 'abc/b', false], // ** inside a component is a *
    ['abc**', 'abcd', true],
    ['[^a]', 'b', true],
    ['v[0-9].*', 'v1.2', true],
    ['v?', 'v10', false],
    ['library/*', 'library/nginx', true],
    ['library/*', 'library/a/b', false],
    ['library/**', 'library/a/b', true],
    ['!library', '!library', true], // no negation
    ['#x', '#x', true], // no comments
    ['+(a)', '+(a)', true], // no extglobs
    ['*', '.hidden', true], // dotfiles match
  ];
  for (const [pattern, value, want] of table) {
    it(`${JSON.stringify(pattern)} vs ${JSON.stringify(value)} is ${want}`, () => assert.equal(matchPattern(pattern, value), want));
  }

  it('names a pattern without wildcards directly (no catalog), braces expanded', () => {
    assert.deepEqual(specificNames('library/nginx'), ['library/nginx']);
    assert.deepEqual(specificNames('library/{nginx,redis}'), ['library/nginx', 'library/redis']);
    assert.deepEqual(specificNames('{a,b}/{c,d}'), ['a/c', 'a/d', 'b/c', 'b/d']);
    assert.equal(specificNames('library/*'), undefined);
    assert.equal(specificNames(''), undefined);
  });
});

const rule = (filters: FilterConfig[], include_untagged = false) => new RuleFilter({ filters, include_untagged });
const f = (type: FilterConfig['type'], value: FilterConfig['value'], decoration: FilterConfig['decoration'] = 'matches'): FilterConfig => ({
  type,
  value,
  decoration,
});

describe('filters', () => {
  it('name: matched against the full repository path, project included', () => {
    const r = rule([f('name', 'library/**')]);
    assert.equal(r.repository('library/nginx').keep, true);
    assert.equal(r.repository('library/a/b').keep, true);
    assert.equal(r.repository('team/library').keep, false);
    assert.equal(rule([f('name', 'library/*')]).repository('library/a/b').keep, false);
  });

  it('name: several filters must all pass; excludes keeps what does not match', () => {
    const r = rule([f('name', 'library/**'), f('name', '**/test-*', 'excludes')]);
    assert.equal(r.repository('library/app').keep, true);
    const out = r.repository('library/test-app');
    assert.equal(out.keep, false);
    assert.match(out.keep ? '' : out.reason, /excluded by name filter "\*\*\/test-\*"/);
  });

  it('tag: matches keeps the matching tags, excludes the others, filters chain', () => {
    const a = { repository: 'r', tags: ['v1.0', 'v1.1-rc1', 'latest'] };
    assert.deepEqual(rule([f('tag', 'v*')]).artifact(a), { keep: true, tags: ['v1.0', 'v1.1-rc1'] });
    assert.deepEqual(rule([f('tag', '*-rc*', 'excludes')]).artifact(a), { keep: true, tags: ['v1.0', 'latest'] });
    assert.deepEqual(rule([f('tag', 'v*'), f('tag', '*-rc*', 'excludes')]).artifact(a), { keep: true, tags: ['v1.0'] });
    const none = rule([f('tag', 'v2*')]).artifact(a);
    assert.equal(none.keep, false);
    assert.match(none.keep ? '' : none.reason, /not matching tag filter "v2\*"/);
  });

  it('tag: an empty pattern keeps every tag', () => {
    assert.deepEqual(rule([f('tag', '')]).artifact({ repository: 'r', tags: ['a', 'b'] }), { keep: true, tags: ['a', 'b'] });
  });

  it('untagged artifacts: kept exactly when include_untagged is on (Harbor issue 11233)', () => {
    const untagged = { repository: 'r', tags: [], digest: 'sha256:x' };
    assert.equal(rule([f('tag', '**')]).artifact(untagged).keep, false);
    assert.equal(rule([]).artifact(untagged).keep, false);
    assert.deepEqual(rule([f('tag', 'v*')], true).artifact(untagged), { keep: true, tags: [] });
  });

  it('label: every listed label is required; excludes drops artifacts that carry them all', () => {
    const a = { repository: 'r', tags: ['1'], labels: ['prod', 'signed'] };
    assert.equal(rule([f('label', ['prod'])]).artifact(a).keep, true);
    assert.equal(rule([f('label', ['prod', 'signed'])]).artifact(a).keep, true);
    assert.equal(rule([f('label', ['prod', 'qa'])]).artifact(a).keep, false);
    assert.equal(rule([f('label', ['prod', 'signed'], 'excludes')]).artifact(a).keep, false);
    assert.equal(rule([f('label', ['qa'], 'excludes')]).artifact(a).keep, true);
    // A registry source has no labels: a label filter keeps nothing, its exclusion everything.
    assert.equal(rule([f('label', 'prod')]).artifact({ repository: 'r', tags: ['1'] }).keep, false);
    assert.equal(rule([f('label', 'prod', 'excludes')]).artifact({ repository: 'r', tags: ['1'] }).keep, true);
  });

  it('resource: image keeps images only, artifact keeps everything', () => {
    const chart = { repository: 'r', tags: ['1'], type: 'CHART' };
    const image = { repository: 'r', tags: ['1'], type: 'IMAGE' };
    assert.equal(rule([f('resource', 'image')]).artifact(chart).keep, false);
    assert.equal(rule([f('resource', 'image')]).artifact(image).keep, true);
    assert.equal(rule([f('resource', 'artifact')]).artifact(chart).keep, true);
  });
});

describe("destination names: Harbor's replaceNamespace, every row of the flattening table", () => {
  // Source a/b/c/image under namespace n (HARBOR-SEMANTICS, "Destination name").
  const rows: Array<[string, number, string]> = [
    ['', 1, 'a/b/c/image'], // namespace empty: same as source
    ['n', -1, 'n/image'], // flatten all
    ['n', 0, 'n/a/b/c/image'], // no flattening
    ['n', 1, 'n/b/c/image'], // Harbor UI default
    ['n', 2, 'n/c/image'],
    ['n', 3, 'n/image'],
  ];
  for (const [ns, count, want] of rows) {
    it(`namespace "${ns}", replace count ${count} -> ${want}`, () => assert.equal(destinationRepository('a/b/c/image', ns, count), want));
  }
  it('replace count 4 (more levels than the path has) is an error naming the repository', () => {
    assert.throws(
      () => destinationRepository('a/b/c/image', 'n', 4),
      (err: unknown) =>
        err instanceof DestinationNameError &&
        err.message ===
          'the source repository "a/b/c/image" contains only 3 path components [a b c] excepting the last one, but the destination namespace flattening level is 4',
    );
  });
  it('a namespace with several components counts toward the destination depth', () => {
    assert.equal(destinationRepository('library/nginx', 'mirror/hq', 1), 'mirror/hq/nginx');
  });
});

describe("each destination type's path rule", () => {
  it('Docker Hub takes exactly two components', () => {
    assert.equal(pathRuleOf('docker-hub'), 'only-two');
    assert.equal(destinationRepository('library/nginx', 'myorg', -1, 'only-two'), 'myorg/nginx');
    assert.throws(() => destinationRepository('a/b/nginx', 'myorg', 0, 'only-two'), /contains 4 path components, but the destination registry only supports 2/);
    assert.throws(() => destinationRepository('a/b/nginx', '', 0, 'only-two'), DestinationNameError, 'checked even without a namespace');
  });
  it('Harbor takes at least two (a project, then a name)', () => {
    assert.equal(pathRuleOf('harbor'), 'at-least-two');
    assert.throws(() => destinationRepository('nginx', '', -1, 'at-least-two'), /requires at least 2/);
    assert.equal(destinationRepository('a/b/c', 'n', 0, 'at-least-two'), 'n/a/b/c');
  });
  it('other registries take any depth', () => {
    for (const t of ['docker-registry', 'aws-ecr', 'google-gcr', 'github-ghcr', 'artifact-registry'] as const) assert.equal(pathRuleOf(t), 'any');
  });
});
