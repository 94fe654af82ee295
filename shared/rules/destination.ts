import { ReplicatorError } from '../errors.js';
import type { RegistryType } from './config-schema.js';

/** How many path components a registry type takes (Harbor's `SupportedRepositoryPathComponentType`). */
export type PathRule = 'only-two' | 'at-least-two' | 'any';

/**
 * Harbor's declarations: Docker Hub `ONLY_TWO`, Harbor `AT_LEAST_TWO` (a project, then a name),
 * others any. Three types whose Harbor adapters need a namespace to prepare a push have it said
 * here, so a name that cannot work is an error of its artifact before any request: DTR
 * repositories are `<namespace>/<name>` exactly (Harbor's adapter creates `path[0]/path[1]`),
 * Artifactory's first component is the repository key, Volcengine refuses fewer than two.
 */
export function pathRuleOf(type: RegistryType): PathRule {
  switch (type) {
    case 'docker-hub':
    case 'dtr':
      return 'only-two';
    case 'harbor':
    case 'jfrog-artifactory':
    case 'volcengine-cr':
      return 'at-least-two';
    default:
      return 'any';
  }
}

/** A destination name that cannot be made: an error of that artifact's task, never a rename. */
export class DestinationNameError extends ReplicatorError {
  override name = 'DestinationNameError';
  constructor(message: string) {
    super('DESTINATION_NAME', message);
  }
}

/**
 * The destination repository for `repository` under `namespace`, exactly as Harbor's
 * `replaceNamespace` (`controller/replication/flow/stage.go`): no namespace keeps the name;
 * a negative count keeps only the last component under the namespace; 0 keeps the whole path;
 * n drops the first n components; more than the path has is an error. Then the destination's
 * path rule is checked (Harbor skips it when the namespace is empty; we check every name, since
 * the push would fail anyway).
 */
export function destinationRepository(repository: string, namespace: string, replaceCount: number, rule: PathRule = 'any'): string {
  let dst: string;
  const parts = repository.split('/');
  const name = parts[parts.length - 1]!;
  if (namespace === '') {
    dst = repository;
  } else if (replaceCount < 0) {
    dst = `${namespace}/${name}`;
  } else if (replaceCount > parts.length - 1) {
    throw new DestinationNameError(
      `the source repository "${repository}" contains only ${parts.length - 1} path components [${parts.slice(0, -1).join(' ')}] excepting the last one, but the destination namespace flattening level is ${replaceCount}`,
    );
  } else {
    dst = [namespace, ...parts.slice(replaceCount, -1), name].join('/');
  }
  const count = dst.split('/').length;
  if (rule === 'only-two' && count !== 2) {
    throw new DestinationNameError(`the destination repository "${dst}" contains ${count} path components, but the destination registry only supports 2`);
  }
  if (rule === 'at-least-two' && count < 2) {
    throw new DestinationNameError(`the destination repository "${dst}" contains only ${count} path component, but the destination registry requires at least 2`);
  }
  return dst;
}
