// The CDK app (`npx cdk deploy` at the repository root; cdk.json runs the compiled app).
// A bad config stops the synth before anything is built: one line per problem, each naming
// its path, and a non-zero exit.
import { App } from 'aws-cdk-lib';
import { ConfigError } from '../shared/rules/load-config.js';
import { buildApp } from './build-app.js';

const app = new App();
try {
  await buildApp(app);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`harbor-replicator: ${err.message}\n`);
  process.exit(1);
}
app.synth();
