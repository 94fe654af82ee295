// Lambda handler (placeholder while the AWS deployment is built).
export const handler = async (): Promise<void> => {
  throw new Error('not implemented yet');
};
