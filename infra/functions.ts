import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { entryOf, lambdaBundling, REPO_ROOT, type LambdaName } from './bundling.js';
import { acknowledge } from './nag.js';
import { eniStatement, ENI_REASON, type FunctionNetwork } from './network.js';

/** Powertools' service name: the `service` dimension of every custom metric. */
export const SERVICE_NAME = 'harbor-replicator';
/** The CloudWatch namespace of the handlers' metrics (Powertools Metrics). */
export const METRICS_NAMESPACE = 'HarborReplicator';

/** One function's size and limits (the config's `aws.<function>` section, or fixed ones). */
export interface FunctionSettings {
  memory_mb: number;
  timeout_s: number;
  reserved_concurrency?: number | undefined;
}

export interface ReplicatorFunctionProps {
  name: LambdaName;
  description: string;
  settings: FunctionSettings;
  /** The validated config's JSON, baked into the bundle. */
  configJson: string;
  environment: Record<string, string>;
  /** `aws.vpc`: the subnets and security groups the function runs in (absent: Lambda's own network). */
  network?: FunctionNetwork | undefined;
}

/**
 * One Lambda of the service: its own role (nothing but its own log group and X-Ray until the
 * stack grants more), its own log group with a retention, arm64, Node.js 22, X-Ray active,
 * the bundle built by infra/bundling.ts.
 */
export class ReplicatorFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  /** Runs in a VPC: its role holds the network interface actions ("*", acknowledged). */
  private readonly inVpc: boolean;

  constructor(scope: Construct, id: string, props: ReplicatorFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    // A role of our own instead of AWSLambdaBasicExecutionRole: writes to this log group only.
    this.role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com'), description: `harbor-replicator ${props.name} function` });
    this.logGroup.grantWrite(this.role);
    // Lambda checks these when it creates the function: the role's policy is created first (the
    // function depends on its role, policy included).
    this.inVpc = props.network !== undefined;
    if (props.network) this.role.addToPrincipalPolicy(eniStatement());
    this.fn = new NodejsFunction(this, 'Function', {
      entry: entryOf(props.name),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}package-lock.json`,
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.settings.memory_mb,
      timeout: Duration.seconds(props.settings.timeout_s),
      reservedConcurrentExecutions: props.settings.reserved_concurrency,
      role: this.role,
      logGroup: this.logGroup,
      tracing: Tracing.ACTIVE,
      ...(props.network ?? {}),
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: lambdaBundling(props.configJson),
    });
    acknowledge(this.fn, {
      'AwsSolutions-L1': 'nodejs22.x on purpose: the code is built and tested on Node 20/22 (the CLI runs on Node >= 20.18); a newer runtime is adopted after the suite runs on it',
    });
  }

  /**
   * Acknowledges the role's `"*"` resources (one cdk-nag finding per role): X-Ray's, which every
   * function has, the network interfaces' in a VPC, and `others` (one reason per action that
   * needs it). Call once, after the grants.
   */
  acknowledgeAnyResource(...others: string[]): void {
    const reasons = [
      'xray:PutTraceSegments/PutTelemetryRecords (tracing active) have no resource-level permissions',
      ...(this.inVpc ? [ENI_REASON] : []),
      ...others,
    ];
    acknowledge(this.role, { 'AwsSolutions-IAM5[Resource::*]': `"*" is required by: ${reasons.join('; ')}` });
  }
}
