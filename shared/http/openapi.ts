import { DRIFT_ITEMS_MAX, TRIGGERS } from '../executions/model.js';
import { TASK_LOG_MAX_BYTES, TASK_LOG_MAX_LINES } from '../executions/task-log.js';
import { REGISTRY_TYPES } from '../rules/config-schema.js';
import { PLAN_PREVIEW_ERRORS_MAX, PLAN_PREVIEW_ITEMS_MAX } from '../rules/plan-preview.js';

/** The management API's OpenAPI 3.1 document, served at `/api/v1/openapi.json`. */
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = { description: 'Error', content: { 'application/json': { schema: ref('Error') } } };
const page = (item: string) => ({
  type: 'object',
  properties: { items: { type: 'array', items: ref(item) }, next_cursor: { type: ['string', 'null'], description: 'pass as `cursor` for the next page' } },
});
const listParams = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
  { name: 'cursor', in: 'query', description: 'a previous page\'s `next_cursor`, as is (anything else: 400 INVALID_CURSOR)', schema: { type: 'string' } },
];
const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });

function crud(tag: string, item: string, path: string, input = item) {
  return {
    [`/${path}`]: {
      get: { tags: [tag], summary: `List ${path} (the config file's and the API's, each with its origin)`, responses: { 200: { description: 'OK', ...json({ type: 'object', properties: { items: { type: 'array', items: ref(item) } } }) } } },
      post: { tags: [tag], summary: `Create a ${tag} (validated like the config file)`, requestBody: json(ref(input)), responses: { 201: { description: 'Created', ...json(ref(item)) }, 400: error, 403: error, 409: error } },
    },
    [`/${path}/{name}`]: {
      parameters: [nameParam],
      get: { tags: [tag], responses: { 200: { description: 'OK', ...json(ref(item)) }, 404: error } },
      put: { tags: [tag], summary: 'Replace an API-managed entry (config-file entries are read-only: 403)', requestBody: json(ref(input)), responses: { 200: { description: 'OK', ...json(ref(item)) }, 400: error, 403: error, 404: error } },
      delete: { tags: [tag], summary: 'Delete an API-managed entry', responses: { 204: { description: 'Deleted' }, 400: error, 403: error, 404: error } },
    },
  };
}

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'harbor-replicator management API',
    version: '1',
    description:
      'Registries, rules, executions and tasks. Every route but this document needs `Authorization: Bearer <api.token>` (the scheme in any case); `api.read_token` may call GET routes only (anything else: 403 READ_ONLY).',
  },
  servers: [{ url: '/api/v1' }],
  security: [{ bearer: [] }],
  paths: {
    '/access': {
      get: {
        tags: ['session'],
        summary: 'What the caller may do: `write` (api.token; on AWS, IAM decides each call) or `read` (api.read_token: GET only)',
        responses: {
          200: { description: 'OK', ...json({ type: 'object', required: ['access'], properties: { access: { enum: ['write', 'read'] } } }) },
          401: error,
        },
      },
    },
    ...crud('registry', 'Registry', 'registries', 'RegistryInput'),
    '/registries/{name}/ping': {
      parameters: [nameParam],
      post: {
        tags: ['registry'],
        summary: 'Check the connection and the credentials (Harbor\'s "Test Connection"), within a bounded time. Always 200: the status and a code, never what the registry said',
        responses: { 200: { description: 'The outcome', ...json(ref('PingResult')) }, 404: error },
      },
    },
    ...crud('rule', 'Rule', 'rules'),
    '/rules/{name}/plan': {
      parameters: [nameParam],
      post: {
        tags: ['rule'],
        summary: `A dry run: what the rule would copy now (its source listed, its filters and destination names applied), nothing recorded or copied. At most ${PLAN_PREVIEW_ITEMS_MAX} artifacts and about 20 s of listing: \`truncated\` says the plan goes on. 404 RULE_UNKNOWN; 502 with the code when the source cannot be listed`,
        responses: { 200: { description: 'OK', ...json(ref('PlanPreview')) }, 403: error, 404: error, 502: error },
      },
    },
    '/rules/{name}/drift': {
      parameters: [nameParam],
      get: {
        tags: ['rule'],
        summary: `The drift its last reconcile measured, and when: counts of every tag missing, different and extra at the destination, and the first ${DRIFT_ITEMS_MAX} of them. 404 RULE_UNKNOWN: no such rule; 404 NO_RECONCILE: no reconcile of it recorded yet`,
        responses: { 200: { description: 'OK', ...json(ref('Drift')) }, 404: error },
      },
    },
    '/executions': {
      get: {
        tags: ['execution'],
        summary: 'List executions, newest first',
        parameters: [
          ...listParams,
          { name: 'rule', in: 'query', schema: { type: 'string' } },
          { name: 'status', in: 'query', schema: { enum: ['InProgress', 'Succeed', 'Failed', 'Stopped'] } },
          { name: 'trigger', in: 'query', description: 'a filter on the listed page: a page may hold fewer than `limit` items and still have a next_cursor', schema: { enum: TRIGGERS } },
        ],
        responses: { 200: { description: 'OK', ...json(page('Execution')) }, 400: error },
      },
      post: {
        tags: ['execution'],
        summary: 'Run a rule now: trigger manual, or reconcile (a full run that records its drift and, with replicate_deletion, deletes destination tags the source no longer has)',
        requestBody: json({
          type: 'object',
          required: ['rule'],
          properties: { rule: { type: 'string' }, trigger: { enum: ['manual', 'reconcile'], default: 'manual' } },
          additionalProperties: false,
        }),
        responses: { 201: { description: 'Created', ...json(ref('Execution')) }, 400: error, 404: error, 409: error },
      },
    },
    '/executions/{id}': { parameters: [idParam], get: { tags: ['execution'], responses: { 200: { description: 'OK', ...json(ref('Execution')) }, 404: error } } },
    '/executions/{id}/stop': {
      parameters: [idParam],
      post: { tags: ['execution'], summary: 'Stop: pending tasks become Stopped, running copies stop at their next chunk', responses: { 200: { description: 'OK', ...json(ref('Execution')) }, 404: error } },
    },
    '/executions/{id}/tasks': {
      parameters: [idParam],
      get: {
        tags: ['execution'],
        summary: 'Tasks of an execution (one per tag/artifact)',
        parameters: [...listParams, { name: 'status', in: 'query', schema: { enum: ['Pending', 'Scheduled', 'Running', 'Stopped', 'Error', 'Success'] } }],
        responses: { 200: { description: 'OK', ...json(page('Task')) }, 400: error, 404: error },
      },
    },
    '/executions/{id}/tasks/{task}/log': {
      parameters: [idParam, { name: 'task', in: 'path', required: true, description: 'the task id', schema: { type: 'integer', minimum: 1 } }],
      get: {
        tags: ['execution'],
        summary: `A task's log: one line per step of its runs (resolve, each blob, retries, manifest PUTs, the end of each run), \`<RFC 3339 time> <level> <step> <message> key=value...\`, oldest first, the newest ${TASK_LOG_MAX_LINES} lines within ${TASK_LOG_MAX_BYTES / 1024} KiB. A run's lines are there once it has ended or handed over; empty before. No credentials in it. 404 NOT_FOUND (JSON): no such execution or task`,
        responses: {
          200: { description: 'The log', content: { 'text/plain': { schema: { type: 'string' } } } },
          404: error,
        },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      ErrorBody: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
      Error: { type: 'object', properties: { error: ref('ErrorBody') } },
      Registry: {
        type: 'object',
        description:
          'As `registries[]` in replicator.yaml, with `origin` (`file` or `api`). The config file\'s show their secret references; API ones show `credential` as `{type: "basic", access_key, has_secret: true}` (never the secret) or `{username, password: {secret}}`, and `invalid` (why) when a stored entry cannot be used.',
        required: ['name', 'type', 'origin'],
        properties: { name: { type: 'string' }, type: { type: 'string' }, url: { type: 'string' }, origin: { enum: ['file', 'api'] }, credential: { type: 'object' }, invalid: { type: 'string' } },
      },
      RegistryInput: {
        type: 'object',
        description:
          "As `registries[]` in replicator.yaml, except: `url` (and `api_url`, a provider API's address) is http(s) without user or password, its host must not be link-local (nor loopback on AWS) and must be within `api.allowed_registry_hosts` when set (400 `URL_REFUSED`); no `ca_file`, no `api_token` (Quay's OAuth2 token goes in Harbor's JSON credential as `access_secret`); `credential` as below (anything else: 400 naming the field). A cloud access key pair is `{type: basic, access_key, access_secret}`, as in Harbor.",
        required: ['name', 'type'],
        properties: {
          name: { type: 'string' },
          type: { enum: [...REGISTRY_TYPES], description: "Harbor's registry type names" },
          url: { type: 'string', format: 'uri' },
          api_url: { type: 'string', format: 'uri' },
          region: { type: 'string' },
          instance: { type: 'string' },
          credential: {
            oneOf: [
              {
                type: 'object',
                description:
                  "Harbor's literal form. `access_secret` is kept encrypted (serve, needs `api.encryption_key`) or in Secrets Manager under `api.secret_prefix` (AWS); a PUT without it keeps the stored one.",
                required: ['type', 'access_key'],
                properties: { type: { const: 'basic' }, access_key: { type: 'string' }, access_secret: { type: 'string', writeOnly: true } },
                additionalProperties: false,
              },
              {
                type: 'object',
                description: 'A Secrets Manager secret under `api.secret_prefix`, or listed in `api.allowed_secrets`.',
                required: ['username', 'password'],
                properties: { username: { type: 'string' }, password: { type: 'object', required: ['secret'], properties: { secret: { type: 'string' } }, additionalProperties: false } },
                additionalProperties: false,
              },
            ],
          },
        },
      },
      PingResult: {
        type: 'object',
        required: ['ok', 'status', 'code'],
        properties: {
          ok: { type: 'boolean' },
          status: { type: ['integer', 'null'], description: "The registry's HTTP status; null when no answer came" },
          code: {
            type: ['string', 'null'],
            description:
              "null when ok; the registry's error code (UNAUTHORIZED, DENIED, ..., or HTTP_<status>), or ours: DNS, TLS, CONNECT, TIMEOUT, URL_REFUSED (an address the rules refuse), REGISTRY_INVALID, SECRET_*",
          },
        },
      },
      Rule: { type: 'object', description: "As `rules[]` in replicator.yaml: Harbor's replication policy fields.", required: ['name', 'src_registry', 'dest_registry'] },
      Counts: {
        type: 'object',
        properties: Object.fromEntries(['total', 'pending', 'scheduled', 'running', 'succeed', 'failed', 'stopped'].map((k) => [k, { type: 'integer' }])),
      },
      Execution: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          rule: { type: 'string' },
          trigger: { enum: TRIGGERS },
          status: { enum: ['InProgress', 'Succeed', 'Failed', 'Stopped'] },
          statusText: { type: 'string' },
          counts: ref('Counts'),
          bytes: { type: 'integer', description: "bytes its tasks copied (the sum of the tasks' bytes): a progress view while it runs, summed from the tasks when it closes" },
          planned: { type: 'boolean' },
          stopRequested: { type: 'boolean' },
          startTime: { type: 'string', format: 'date-time' },
          endTime: { type: 'string', format: 'date-time' },
        },
      },
      PlanSide: {
        type: 'object',
        properties: { registry: { type: 'string' }, host: { type: 'string' }, repository: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } }, digest: { type: ['string', 'null'] } },
      },
      PlanPreview: {
        type: 'object',
        required: ['rule', 'source', 'destination', 'items', 'errors', 'counts', 'truncated', 'itemsLimit'],
        properties: {
          rule: { type: 'string' },
          source: { type: 'string', description: 'the source registry' },
          destination: { type: 'string', description: 'the destination registry' },
          items: { type: 'array', maxItems: PLAN_PREVIEW_ITEMS_MAX, items: { type: 'object', properties: { operation: { const: 'copy' }, source: ref('PlanSide'), destination: ref('PlanSide') } } },
          errors: {
            type: 'array',
            maxItems: PLAN_PREVIEW_ERRORS_MAX,
            description: 'artifacts selected that cannot be copied (DESTINATION_NAME, INVALID_NAME)',
            items: { type: 'object', properties: { what: { type: 'string' }, code: { type: 'string' }, error: { type: 'string' } } },
          },
          counts: {
            type: 'object',
            description: 'what was seen: whole when not truncated, a lower bound otherwise',
            properties: { items: { type: 'integer' }, excluded: { type: 'integer' }, errors: { type: 'integer' } },
          },
          truncated: { type: 'boolean', description: 'the plan goes on past what is shown' },
          truncatedBy: { enum: ['items', 'time'], description: 'why it stopped early: the item cap or the time limit' },
          itemsLimit: { type: 'integer', const: PLAN_PREVIEW_ITEMS_MAX },
        },
      },
      DriftEntry: {
        type: 'object',
        required: ['kind', 'repository', 'tag'],
        properties: {
          kind: { enum: ['missing', 'different', 'extra'], description: 'missing: at the source, not at the destination; different: the destination tag is at another digest; extra: at the destination, no longer at the source (rules with replicate_deletion only)' },
          repository: { type: 'string', description: 'the destination repository' },
          tag: { type: 'string', description: 'the tag (an untagged artifact: its digest)' },
          sourceRepository: { type: 'string' },
          sourceDigest: { type: 'string' },
          destinationDigest: { type: 'string' },
          action: { enum: ['delete', 'keep'], description: 'extra: a deletion task was planned (it checks the source again just before), or the tag is kept' },
          reason: { type: 'string', description: 'why an extra tag is kept (e.g. its manifest is also tagged otherwise at the destination)' },
        },
      },
      Drift: {
        type: 'object',
        required: ['rule', 'takenAt', 'counts', 'items', 'truncated', 'itemsLimit', 'extrasChecked'],
        properties: {
          rule: { type: 'string' },
          execution: { type: 'string', description: 'the reconcile execution that measured it' },
          takenAt: { type: 'string', format: 'date-time', description: 'when its planning ended' },
          counts: {
            type: 'object',
            properties: { missing: { type: 'integer' }, different: { type: 'integer' }, extra: { type: 'integer' }, inSync: { type: 'integer' } },
          },
          extrasChecked: { type: 'boolean', description: 'extra tags were looked for (the rule has replicate_deletion)' },
          items: { type: 'array', maxItems: DRIFT_ITEMS_MAX, items: ref('DriftEntry'), description: `the first ${DRIFT_ITEMS_MAX} entries found` },
          truncated: { type: 'boolean', description: 'there were more entries than items holds' },
          itemsLimit: { type: 'integer', const: DRIFT_ITEMS_MAX },
        },
      },
      Task: {
        type: 'object',
        properties: {
          executionId: { type: 'string' },
          id: { type: 'integer' },
          operation: { enum: ['copy', 'deletion'] },
          source: { type: 'object', properties: { registry: { type: 'string' }, repository: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } } },
          destination: { type: 'object', properties: { registry: { type: 'string' }, repository: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } } },
          digest: { type: 'string' },
          status: { enum: ['Pending', 'Scheduled', 'Running', 'Stopped', 'Error', 'Success'] },
          statusText: { type: 'string' },
          attempts: { type: 'integer' },
          bytes: { type: 'integer' },
          startTime: { type: 'string', format: 'date-time' },
          endTime: { type: 'string', format: 'date-time' },
          referrers: {
            type: 'object',
            description: "a copy's signatures, SBOMs, attestations and other referrers, as its last run left them",
            properties: { copied: { type: 'integer' }, in_sync: { type: 'integer' }, failed: { type: 'integer' } },
          },
          referrerDigests: { type: 'array', items: { type: 'string' }, description: 'the referrers this task pushed to the destination' },
        },
      },
    },
  },
} as const;
