import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/**
 * The harbor-replicator deployment. Today it holds no resources: the copy engine and CLI come
 * first; the webhook receiver, queues, planner and copier Lambdas, table and schedules are added
 * by the AWS deployment work, reading the same config file as `serve` and `run`.
 */
export class HarborReplicatorStack extends Stack {
  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
  }
}
