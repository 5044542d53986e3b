// The authorization stage, first on inbound listeners: the caller's verified SPIFFE id (ctx.peer, set from the
// mTLS connection) and the request's method and path against the listener's `stages.authorization` policies
// (with control's for this service merged in: src/config/overlay.ts). Refused: 403 with flag RBAC (gRPC
// PERMISSION_DENIED); the access log and the response_flag label count it, nothing else is logged. Left out of
// listeners without policies; a TCP listener decides once per connection, on the caller alone.
import type { AuthorizationConfig } from '../../src/config/authorization-schema.ts';
import { CompiledAuthorization } from '../../src/identity/authorization.ts';
import { FLAG, localReply } from '../flags.ts';
import type { StageDefinition } from './types.ts';

const DENIED = localReply(FLAG.AccessDenied);

export const authorizationStage: StageDefinition = {
  name: 'authorization',
  protocols: ['http', 'tcp'],
  create({ config }) {
    if (config === undefined) return null;
    const authz = new CompiledAuthorization(config as AuthorizationConfig);
    if (authz.allowsEverything) return null;
    return {
      name: 'authorization',
      onRequest(ctx) {
        const peer = ctx.peer;
        return authz.decide(peer === null ? null : peer.spiffeId, ctx.method, ctx.path).allowed ? null : DENIED;
      },
    };
  },
};
