import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { CfnStage, HttpApi, HttpMethod, HttpNoneAuthorizer, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from './nag.js';

/** Harbor's webhook route (shared/http/app.ts), throttled per route at the stage. */
export const WEBHOOK_ROUTE = { method: HttpMethod.POST, path: '/webhooks/harbor' } as const;
/** The management API's routes: the base path and everything under it. */
export const API_PATHS = ['/api/v1', '/api/v1/{proxy+}'] as const;

/** One JSON line per request. Who called (IAM routes) and how the integration answered; no headers. */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  time: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  caller: '$context.identity.userArn',
  userAgent: '$context.identity.userAgent',
  route: '$context.routeKey',
  status: '$context.status',
  responseLength: '$context.responseLength',
  latencyMs: '$context.responseLatency',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
};

export interface ReplicatorHttpApiProps {
  receiver: IFunction;
  api: IFunction;
  webhookRateLimit: number;
  webhookBurstLimit: number;
}

/**
 * The HTTP API: Harbor's webhook to the receiver, without IAM (Harbor cannot sign requests; the
 * receiver compares the Auth Header secret) and throttled; the management API to the API
 * function behind IAM (SigV4). One `$default` stage with access logs.
 */
export class ReplicatorHttpApi extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;

  constructor(scope: Construct, id: string, props: ReplicatorHttpApiProps) {
    super(scope, id);
    this.httpApi = new HttpApi(this, 'Api', { description: 'harbor-replicator: Harbor webhooks and the management API', createDefaultStage: false });
    const [webhookRoute] = this.httpApi.addRoutes({
      path: WEBHOOK_ROUTE.path,
      methods: [WEBHOOK_ROUTE.method],
      integration: new HttpLambdaIntegration('Receiver', props.receiver),
      authorizer: new HttpNoneAuthorizer(),
    });
    const apiIntegration = new HttpLambdaIntegration('Management', props.api);
    const iam = new HttpIamAuthorizer();
    for (const path of API_PATHS) this.httpApi.addRoutes({ path, methods: [HttpMethod.ANY], integration: apiIntegration, authorizer: iam });

    this.accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.stage = new HttpStage(this, 'Stage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      accessLogSettings: { destination: new LogGroupLogDestination(this.accessLogs), format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)) },
    });
    // Per-route throttling has no L2 property. RouteSettings is a JSON map keyed by route key
    // ("POST /webhooks/harbor"), passed through as is: hence CloudFormation's own casing.
    const cfnStage = this.stage.node.defaultChild as CfnStage;
    cfnStage.routeSettings = {
      [`${WEBHOOK_ROUTE.method} ${WEBHOOK_ROUTE.path}`]: { ThrottlingRateLimit: props.webhookRateLimit, ThrottlingBurstLimit: props.webhookBurstLimit },
    };
    // Route settings name a route that must exist first.
    this.stage.node.addDependency(webhookRoute!);

    acknowledge(webhookRoute!, {
      'AwsSolutions-APIG4': "Harbor's webhook cannot sign requests: it sends the policy's Auth Header, which the receiver compares in constant time with the secret in Secrets Manager; the route is throttled",
    });
  }

  /** `https://<id>.execute-api.<region>.amazonaws.com` (the `$default` stage has no path). */
  get endpoint(): string {
    return this.httpApi.apiEndpoint;
  }
}
