import { Annotations, Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { REPO_ROOT } from './bundling.js';
import { CONFIG_CONTEXT_KEY, EXAMPLE_CONFIG, loadDeployment, locateConfig, type ConfigLocation, type Deployment } from './config.js';
import { HarborReplicatorStack } from './stack.js';

/** The stack's name (and CloudFormation stack name). */
export const STACK_NAME = 'HarborReplicator';
/** Context key: an existing SNS topic the alarms notify. */
export const ALARM_TOPIC_CONTEXT_KEY = 'alarmTopicArn';

/**
 * Puts the deployment into `app`: finds and validates the config (throws ConfigError naming each
 * bad path), adds the stack, warns when the example config is used, and registers cdk-nag's
 * AWS Solutions checks, which fail the synth on any finding not fixed or acknowledged.
 */
export async function buildApp(
  app: App,
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ stack: HarborReplicatorStack; location: ConfigLocation; deployment: Deployment }> {
  const location = locateConfig(app.node.tryGetContext(CONFIG_CONTEXT_KEY), opts.env ?? process.env, opts.cwd ?? process.cwd(), REPO_ROOT);
  const deployment = await loadDeployment(location.file);
  const stack = new HarborReplicatorStack(app, STACK_NAME, {
    description: 'harbor-replicator: event-driven container image replication for Harbor',
    deployment,
    alarmTopicArn: app.node.tryGetContext(ALARM_TOPIC_CONTEXT_KEY) as string | undefined,
  });
  if (location.example) {
    Annotations.of(stack).addWarningV2(
      'harbor-replicator:example-config',
      `No config given: synthesized from ${EXAMPLE_CONFIG}. Deploy with -c config=replicator.yaml (or REPLICATOR_CONFIG_FILE, or ./replicator.yaml).`,
    );
  }
  deployment.warnings.forEach((w, i) => Annotations.of(stack).addWarningV2(`harbor-replicator:config-${i}`, w));
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { stack, location, deployment };
}
