// The webhook receiver: Harbor's PUSH_ARTIFACT / DELETE_ARTIFACT events through API Gateway.
// Checks the secret, validates the payload, matches event-based rules and sends one plan job
// per matching rule to the execution queue; answers at once (Harbor waits 3 s). It serves that
// route only (and /healthz): the management API is the API function's, behind IAM.
import { httpHandler } from './http.js';

export const handler = httpHandler({ routes: 'webhook' });
