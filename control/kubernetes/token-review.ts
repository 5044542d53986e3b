// Proxies in a cluster prove who they are to control with their service account: a projected token for the
// audience `skein-control`, checked by the API server (a TokenReview, authentication.k8s.io/v1). A token that
// reviews as system:serviceaccount:NS:SA may get a certificate for spiffe://TD/ns/NS/sa/SA only
// (api/certificates.ts), unlike the bootstrap token, which any holder may use for any id of the trust domain.
// Access needed: create on tokenreviews (authentication.k8s.io).
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';

/** The audience proxies' projected tokens are made for (the manifests' serviceAccountToken volume). */
export const TOKEN_AUDIENCE = 'skein-control';

/** Reviews a bearer token: the service account's user name, or null when the API server does not accept it. */
export type TokenReviewer = (token: string) => Promise<string | null>;

export function tokenReviewer(kc: KubeConfig, audience = TOKEN_AUDIENCE): TokenReviewer {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (token) => {
    const review = await api.createTokenReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } },
    });
    const status = review.status;
    if (status?.authenticated !== true) return null;
    // The API server must have checked our audience (a token for another audience is not for us).
    if (!(status.audiences ?? []).includes(audience)) return null;
    const user = status.user?.username ?? '';
    return user.startsWith('system:serviceaccount:') ? user : null;
  };
}
