// The delivery key that makes Harbor's retries of one webhook idempotent, and only those: one key
// per resource, with the tag and the Harbor it came from in it (occur_at has a resolution of a second).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHarborWebhook, type HarborArtifactEvent } from '../shared/harbor/webhook.js';

const digest = `sha256:${'a'.repeat(64)}`;

function push(host: string, tags: string[], occurAt = 1_700_000_000) {
  return {
    type: 'PUSH_ARTIFACT',
    occur_at: occurAt,
    operator: 'ci',
    event_data: {
      resources: tags.map((tag) => ({ digest, tag, resource_url: `${host}/library/app:${tag}` })),
      repository: { name: 'app', namespace: 'library', repo_full_name: 'library/app', repo_type: 'private' },
    },
  };
}

function keys(body: unknown): string[] {
  const parsed = parseHarborWebhook(body);
  assert.equal(parsed.kind, 'artifacts');
  return (parsed as { events: HarborArtifactEvent[] }).events.map((e) => e.idempotencyKey);
}

describe('webhook delivery keys', () => {
  it('the same delivery sent again has the same keys', () => {
    assert.deepEqual(keys(push('harbor.example.com', ['v1', 'latest'])), keys(push('harbor.example.com', ['v1', 'latest'])));
  });

  it('one push with several resources dedupes per resource: each tag its own key', () => {
    const [v1, latest] = keys(push('harbor.example.com', ['v1', 'latest']));
    assert.notEqual(v1, latest);
    // The same tags sent as two deliveries in the same second: the same per-resource keys, so a
    // resource already taken is answered as a duplicate and the other is not.
    assert.deepEqual([...keys(push('harbor.example.com', ['v1'])), ...keys(push('harbor.example.com', ['latest']))], [v1, latest]);
  });

  it('the Harbor it came from is part of the key: two Harbors pushing the same digest and tag in one second are two deliveries', () => {
    assert.notEqual(keys(push('harbor-a.example.com', ['v1']))[0], keys(push('harbor-b.example.com', ['v1']))[0]);
  });

  it('another second is another delivery', () => {
    assert.notEqual(keys(push('harbor.example.com', ['v1'], 1_700_000_000))[0], keys(push('harbor.example.com', ['v1'], 1_700_000_001))[0]);
  });
});
