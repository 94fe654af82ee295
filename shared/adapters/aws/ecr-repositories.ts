import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  RepositoryAlreadyExistsException,
  RepositoryNotFoundException,
  type ECRClient,
} from '@aws-sdk/client-ecr';
import { ReplicatorError } from '../../errors.js';
import { oncePerKey } from '../../util/once-per-key.js';

/** One ECR registry (an account in a region) whose missing repositories are created. */
export interface EcrRepositoriesOptions {
  /** An ECR client of the registry's region. */
  client: ECRClient;
  /** The registry's account id (a cross-account destination is not the caller's own). */
  registryId: string;
  /** The registry host, to name repositories in errors. */
  host: string;
}

/**
 * Creates missing repositories in an ECR registry, which refuses a push to a repository that
 * does not exist (unlike Harbor and docker-registry). DescribeRepositories first, so a role
 * allowed to push but not to create still works with repositories made beforehand; a
 * RepositoryAlreadyExistsException (another worker won the race) counts as success. Each
 * repository is checked once per process (failures are tried again).
 */
export class EcrRepositories {
  private readonly once: (repository: string) => Promise<'exists' | 'created'>;

  constructor(private readonly opts: EcrRepositoriesOptions) {
    this.once = oncePerKey((repository) => this.ensureNow(repository));
  }

  /** Makes sure `repository` (e.g. `team/app`) exists; says whether it was there already. */
  ensure(repository: string): Promise<'exists' | 'created'> {
    return this.once(repository);
  }

  private async ensureNow(repository: string): Promise<'exists' | 'created'> {
    const { client, registryId } = this.opts;
    try {
      await client.send(new DescribeRepositoriesCommand({ registryId, repositoryNames: [repository] }));
      return 'exists';
    } catch (err) {
      if (!(err instanceof RepositoryNotFoundException)) throw this.failure('DescribeRepositories', repository, err);
    }
    try {
      // Defaults on purpose: tags MUTABLE (a replicated tag moves when its source does).
      await client.send(new CreateRepositoryCommand({ registryId, repositoryName: repository }));
      return 'created';
    } catch (err) {
      if (err instanceof RepositoryAlreadyExistsException) return 'exists';
      throw this.failure('CreateRepository', repository, err);
    }
  }

  private failure(operation: string, repository: string, err: unknown): ReplicatorError {
    const e = err as Error;
    return new ReplicatorError('ECR_REPOSITORY', `${this.opts.host}/${repository}: ECR ${operation} failed: ${e.name}: ${e.message}`, { cause: err });
  }
}
