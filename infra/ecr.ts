import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { EcrRegistryAccess } from './config.js';
import { acknowledge } from './nag.js';

/** Reading images: manifests (also HEAD), blob URLs, blob existence. */
export const ECR_PULL = ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'];
/** Listing a source: repositories and tags. */
export const ECR_LIST = ['ecr:DescribeRepositories', 'ecr:ListImages', 'ecr:DescribeImages'];
/** Writing images: one streamed upload per blob, then the manifests. */
export const ECR_PUSH = ['ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage'];

/** Every repository of one registry (account and region): rules name repositories at run time. */
export function repositoriesOf(r: EcrRegistryAccess): string {
  return `arn:${r.partition}:ecr:${r.region}:${r.account}:repository/*`;
}

/**
 * ECR's registry protocol authenticates with a token from GetAuthorizationToken, which has no
 * resource-level permissions (AWS requires "*"); what the token can do is the caller's IAM policy.
 */
export function ecrAuthStatement(): PolicyStatement {
  return new PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] });
}

/**
 * The copier: pull from sources; pull and push at destinations (HEAD before upload, mounts
 * between repositories); deletions where a rule replicates them; creating missing repositories
 * where `create_repositories: true`.
 */
export function copierEcrStatements(registries: readonly EcrRegistryAccess[]): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  for (const r of registries) {
    const actions = new Set<string>();
    if (r.source || r.destination) ECR_PULL.forEach((a) => actions.add(a));
    if (r.destination) ECR_PUSH.forEach((a) => actions.add(a));
    if (r.destination && r.deletes) actions.add('ecr:BatchDeleteImage');
    if (r.destination && r.createRepositories) ['ecr:DescribeRepositories', 'ecr:CreateRepository'].forEach((a) => actions.add(a));
    if (actions.size > 0) statements.push(new PolicyStatement({ actions: [...actions].sort(), resources: [repositoriesOf(r)] }));
  }
  if (statements.length > 0) statements.unshift(ecrAuthStatement());
  return statements;
}

/**
 * The planner: lists and reads sources; at destinations it only HEADs manifests (a tag already
 * in sync is recorded without a task), which ECR authorizes as BatchGetImage.
 */
export function plannerEcrStatements(registries: readonly EcrRegistryAccess[]): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  for (const r of registries) {
    const actions = new Set<string>();
    if (r.source) [...ECR_PULL, ...ECR_LIST].forEach((a) => actions.add(a));
    if (r.destination) actions.add('ecr:BatchGetImage');
    if (actions.size > 0) statements.push(new PolicyStatement({ actions: [...actions].sort(), resources: [repositoriesOf(r)] }));
  }
  if (statements.length > 0) statements.unshift(ecrAuthStatement());
  return statements;
}

/** The reason ecr:GetAuthorizationToken's "*" is acceptable (see ecrAuthStatement). */
export const ECR_AUTH_REASON = 'ecr:GetAuthorizationToken has no resource-level permissions (the token only carries what this role may do)';

/** Acknowledges `repository/*` of each registry in `statements` on `role`. */
export function acknowledgeEcrRepositories(role: Construct, statements: readonly PolicyStatement[]): void {
  for (const s of statements) {
    for (const resource of s.resources) {
      if (resource === '*') continue;
      acknowledge(role, {
        [`AwsSolutions-IAM5[Resource::${resource}]`]:
          'Rules choose repositories at run time (name filters, namespaces, repositories created on demand): every repository of this ECR registry (account and region) the config names, with only the pull/push actions its role in the rules needs',
      });
    }
  }
}
