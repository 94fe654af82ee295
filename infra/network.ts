// `aws.vpc`: the functions in an existing VPC, so they can reach a Harbor behind a VPN or Direct
// Connect. Everything is imported from the IDs the config gives (never looked up in the account:
// `cdk synth` stays offline and needs no credentials). The operator's subnets and security groups
// are used as they are, never given a rule. With `endpoints: true` the stack adds the VPC
// endpoints the functions need when there is no NAT: the gateway endpoints' routes go into the
// given route tables, and the interface endpoints get a security group of their own.
import { Annotations, Fn } from 'aws-cdk-lib';
import {
  CfnVPCEndpoint,
  GatewayVpcEndpointAwsService,
  InterfaceVpcEndpoint,
  InterfaceVpcEndpointAwsService,
  Peer,
  Port,
  SecurityGroup,
  Subnet,
  Vpc,
  type ISecurityGroup,
  type ISubnet,
  type IVpc,
} from 'aws-cdk-lib/aws-ec2';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { VpcConfig } from '../shared/rules/config-schema.js';

/**
 * What Lambda does with a function's role to put its network interfaces in the VPC (the actions
 * of AWSLambdaVPCAccessExecutionRole without its `logs:*` on "*": each role already writes to its
 * own log group only). Used when the function is created or its VPC settings change.
 */
export const ENI_ACTIONS = [
  'ec2:AssignPrivateIpAddresses',
  'ec2:CreateNetworkInterface',
  'ec2:DeleteNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:UnassignPrivateIpAddresses',
];

/**
 * Lambda's documentation asks for these on "*": DescribeNetworkInterfaces and DescribeSubnets have
 * no resource-level permissions, and the interfaces' IDs are Lambda's, not known before it makes them.
 */
export function eniStatement(): PolicyStatement {
  return new PolicyStatement({ actions: ENI_ACTIONS, resources: ['*'] });
}

/** The reason the ENI actions' "*" is acceptable (cdk-nag IAM5, see eniStatement). */
export const ENI_REASON =
  'ec2 network interface actions for Lambda in a VPC (CreateNetworkInterface, DeleteNetworkInterface, Assign/UnassignPrivateIpAddresses on interfaces Lambda names at run time; DescribeNetworkInterfaces and DescribeSubnets have no resource-level permissions)';

/** Where a function runs: the props Lambda's Function takes. */
export interface FunctionNetwork {
  vpc: IVpc;
  vpcSubnets: { subnets: ISubnet[] };
  securityGroups: ISecurityGroup[];
}

/** Gateway endpoints (free): DynamoDB (the table) and S3 (where ECR serves image layers). */
export const GATEWAY_ENDPOINTS = {
  DynamoDb: GatewayVpcEndpointAwsService.DYNAMODB,
  S3: GatewayVpcEndpointAwsService.S3,
} as const;

/**
 * Interface endpoints. The functions' code calls SQS, Secrets Manager, ECR (its API and its
 * registry) and EventBridge Scheduler (the API's schedules). STS, CloudWatch Logs and Monitoring
 * and X-Ray are not called by our code today (Lambda ships logs and EMF metrics itself) but are
 * what the SDK, Powertools and tracing reach for: with no NAT, a call to an AWS API that has no
 * endpoint does not fail, it hangs until the function's timeout.
 */
export const INTERFACE_ENDPOINTS = {
  Sqs: InterfaceVpcEndpointAwsService.SQS,
  SecretsManager: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  EcrApi: InterfaceVpcEndpointAwsService.ECR,
  EcrDkr: InterfaceVpcEndpointAwsService.ECR_DOCKER,
  Sts: InterfaceVpcEndpointAwsService.STS,
  // aws-cdk-lib has no constant for it; the service is `com.amazonaws.<region>.scheduler`.
  Scheduler: new InterfaceVpcEndpointAwsService('scheduler'),
  Logs: InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
  Monitoring: InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
  XRay: InterfaceVpcEndpointAwsService.XRAY,
} as const;

/**
 * The VPC of `aws.vpc`, imported from its IDs, and with `endpoints: true` the VPC endpoints. The
 * functions take `functions` (VpcConfig); with endpoints they should depend on `endpoints`.
 */
export class PrivateNetwork extends Construct {
  readonly vpc: IVpc;
  readonly functions: FunctionNetwork;
  /** The endpoints and their security group (present with `endpoints: true`). */
  readonly endpoints: Construct | undefined;
  /** The interface endpoints' security group: HTTPS from the functions' groups only. */
  readonly endpointSecurityGroup: SecurityGroup | undefined;

  constructor(scope: Construct, id: string, config: VpcConfig) {
    super(scope, id);
    const zones = config.availability_zones;
    // Subnets imported one by one, and selected explicitly (`{subnets}`): CDK then neither needs
    // nor reads their zones, so a config with only subnet IDs synthesizes. (fromVpcAttributes'
    // subnet lists would require the zones, and a subnet count that is a multiple of them.)
    const subnets = config.subnet_ids.map((subnetId, i) => {
      const subnet = Subnet.fromSubnetAttributes(this, `Subnet${i}`, { subnetId, ...(zones ? { availabilityZone: zones[i] } : {}) });
      Annotations.of(subnet).acknowledgeWarning(
        '@aws-cdk/aws-ec2:noSubnetRouteTableId',
        "Nothing reads the subnet's route table: the gateway endpoints take aws.vpc.route_table_ids directly",
      );
      return subnet;
    });
    // fromVpcAttributes wants zones, but reads them only for the subnet lists it is not given
    // here: without configured zones, the region's as a CloudFormation function (Fn::GetAZs),
    // never `Stack.availabilityZones`, which looks the account up when the stack has an env.
    this.vpc = Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: config.vpc_id, availabilityZones: zones ? [...new Set(zones)] : Fn.getAzs() });
    Annotations.of(this.vpc).acknowledgeWarning(
      '@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones',
      "The VPC is imported without subnet lists: every construct here is given its subnets explicitly, so the zones' token is never read",
    );
    // Not mutable: the operator's groups get no rule from this stack (their egress must allow
    // what the functions reach: the registries, and the endpoints or the NAT on 443).
    const groups = config.security_group_ids.map((sg, i) => SecurityGroup.fromSecurityGroupId(this, `FunctionSecurityGroup${i}`, sg, { mutable: false }));
    this.functions = { vpc: this.vpc, vpcSubnets: { subnets }, securityGroups: groups };

    if (!config.endpoints) {
      this.endpoints = undefined;
      this.endpointSecurityGroup = undefined;
      return;
    }
    const endpoints = new Construct(this, 'Endpoints');
    this.endpoints = endpoints;
    // The gateway endpoints are routes in the given route tables, not in subnets: the L1 takes
    // the route table IDs as they are (the L2 would derive them from subnets' attributes).
    for (const [name, service] of Object.entries(GATEWAY_ENDPOINTS)) {
      new CfnVPCEndpoint(endpoints, name, {
        vpcId: config.vpc_id,
        serviceName: service.name,
        vpcEndpointType: 'Gateway',
        routeTableIds: config.route_table_ids ?? [],
      });
    }
    const sg = new SecurityGroup(endpoints, 'SecurityGroup', {
      vpc: this.vpc,
      description: 'harbor-replicator VPC interface endpoints: HTTPS from the functions only',
      allowAllOutbound: false, // an endpoint answers, it never connects out
    });
    for (const fnGroup of config.security_group_ids) sg.addIngressRule(Peer.securityGroupId(fnGroup), Port.tcp(443), `HTTPS from the functions (${fnGroup})`);
    this.endpointSecurityGroup = sg;
    const endpointSubnets = onePerZone(subnets, zones);
    for (const [name, service] of Object.entries(INTERFACE_ENDPOINTS)) {
      new InterfaceVpcEndpoint(endpoints, name, {
        vpc: this.vpc,
        service,
        subnets: { subnets: endpointSubnets },
        securityGroups: [sg],
        // `open` would allow 443 from the VPC's CIDR, which an imported VPC does not know; the
        // group above is narrower anyway.
        open: false,
        // The SDK's default hostnames then resolve to the endpoint: no endpoint URL to configure.
        privateDnsEnabled: true,
      });
    }
  }
}

/**
 * An interface endpoint takes at most one subnet per zone: with the zones given, the first
 * subnet listed in each; without them, every subnet (the operator lists one per zone).
 */
function onePerZone(subnets: ISubnet[], zones: readonly string[] | undefined): ISubnet[] {
  if (!zones) return subnets;
  const seen = new Set<string>();
  return subnets.filter((_, i) => {
    const zone = zones[i]!;
    if (seen.has(zone)) return false;
    seen.add(zone);
    return true;
  });
}
