import { ArnFormat, Stack } from 'aws-cdk-lib';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from './nag.js';

/** A full secret ARN ends with the 6 random characters Secrets Manager appends to the name. */
const COMPLETE_ARN = /:secret:.+-[A-Za-z0-9]{6}$/;

/**
 * The config's Secrets Manager secrets, referenced by name or ARN (never created, never read at
 * synth: the template holds names only). A name or a partial ARN is granted as `NAME-??????`;
 * an ARN ending in `-XXXXXX` is taken as complete (Secrets Manager's own ambiguity: a name that
 * itself ends in a dash and six characters must be given as its full ARN).
 */
export class SecretReferences extends Construct {
  private readonly secrets = new Map<string, ISecret>();

  /** The secret a `{secret: NAME_OR_ARN}` reference names (one construct per reference). */
  secret(ref: string): ISecret {
    let s = this.secrets.get(ref);
    if (!s) {
      const id = `Secret${this.secrets.size}`;
      if (!ref.startsWith('arn:')) s = Secret.fromSecretNameV2(this, id, ref);
      else if (COMPLETE_ARN.test(ref)) s = Secret.fromSecretCompleteArn(this, id, ref);
      else s = Secret.fromSecretPartialArn(this, id, ref);
      this.secrets.set(ref, s);
    }
    return s;
  }

  /** Lets `grantee` read the secrets `refs` name (GetSecretValue, DescribeSecret). */
  grantRead(grantee: IGrantable, refs: readonly string[]): void {
    for (const ref of refs) this.secret(ref).grantRead(grantee);
  }

  /** `arn:<partition>:secretsmanager:<region>:<account>:secret:<prefix>*`: the API-managed secrets. */
  prefixArn(prefix: string): string {
    return Stack.of(this).formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${prefix}*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
  }

  /**
   * The secrets of API-managed credentials, all under `prefix`: `writer` (the API function) may
   * create them, put new values and tag them at creation, and read them; `readers` may read them.
   * Nothing outside the prefix, and no delete.
   */
  grantApiManaged(writer: IGrantable, readers: readonly IGrantable[], prefix: string): void {
    const arn = this.prefixArn(prefix);
    writer.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:TagResource'], resources: [arn] }),
    );
    for (const g of [writer, ...readers]) {
      g.grantPrincipal.addToPrincipalPolicy(new PolicyStatement({ actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], resources: [arn] }));
    }
  }

  /** Acknowledges cdk-nag's finding on the prefix wildcard, on `scope` (a role granted by grantApiManaged). */
  acknowledgeApiManaged(scope: Construct, prefix: string): void {
    const finding = `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${prefix}*]`;
    acknowledge(scope, {
      [finding]:
        'Secrets of registries created through the management API: their names are chosen at run time (prefix + registry name, plus the random suffix Secrets Manager appends), so the grant is the prefix, nothing outside it',
    });
  }
}
