// The CDK app (`npx cdk deploy` at the repository root; cdk.json runs the compiled app).
// The stack grows with the AWS deployment: API Gateway, SQS, Lambdas, DynamoDB, Scheduler.
import { App } from 'aws-cdk-lib';
import { HarborReplicatorStack } from './stack.js';

const app = new App();
new HarborReplicatorStack(app, 'HarborReplicator', {
  description: 'harbor-replicator: event-driven container image replication for Harbor',
});
app.synth();
