/**
 * The engine's ports: what it needs from the platform, one small interface each, with one class
 * per backend in shared/adapters/ (AWS services in the deployment, embedded ones locally).
 */

/** Reads named secrets (AWS Secrets Manager in the AWS deployment). */
export interface SecretStore {
  /** The secret's string value; throws when it does not exist or cannot be read. */
  get(nameOrArn: string): Promise<string>;
}
