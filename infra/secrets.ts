import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

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
}
