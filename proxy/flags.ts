// Response flags (Envoy's vocabulary) and the proxy's own replies. Every response Skein generates carries
// a flag in `x-skein-flags`, the access log and metrics; a gRPC request gets a gRPC status, never HTML.

export const FLAG = {
  NoHealthyUpstream: 'UH',
  UpstreamConnectFailure: 'UF',
  UpstreamConnectionTermination: 'UC',
  UpstreamTimeout: 'UT',
  NoRoute: 'NR',
  UpstreamProtocolError: 'UPE',
  DownstreamDisconnect: 'DC',
  DownstreamProtocolError: 'DPE',
  RateLimited: 'RL',
  /** Refused by an authorization policy (Envoy's RBAC filter writes the same flag). */
  AccessDenied: 'RBAC',
  Overflow: 'UO',
  FaultInjected: 'FI',
  DelayInjected: 'DI',
  RetryLimit: 'URX',
  InternalError: 'IE',
} as const;
export type ResponseFlag = (typeof FLAG)[keyof typeof FLAG];
/** The flags a local reply can carry: all but DI, which marks a request that went on after an injected delay. */
export type ReplyFlag = Exclude<ResponseFlag, 'DI'>;

/**
 * A request's flag after its retries ran out on a failure without an answer: the failure's flag, then URX, as
 * Envoy writes them ("UF,URX"). An upstream answer that was the last allowed attempt is flagged URX alone.
 */
export type RetryLimitedFlag = `${'UF' | 'UC' | 'UT' | 'UPE'},URX`;
/** What a request's flag can be (the access log's response_flags, the response_flag label, x-skein-flags). */
export type RequestFlag = ResponseFlag | RetryLimitedFlag;

/** The flag a failure is answered with: its own, plus URX when the retry stage let it be the last attempt
 *  (it marks the request with URX before it accepts such a failure). */
export function failureFlag(requestFlag: RequestFlag | '', failure: ReplyFlag): RequestFlag {
  if (requestFlag !== FLAG.RetryLimit) return failure;
  switch (failure) {
    case 'UF':
    case 'UC':
    case 'UT':
    case 'UPE':
      return `${failure},URX`;
    default:
      return failure;
  }
}

export const FLAG_HEADER = 'x-skein-flags';

/** gRPC status codes used by the proxy (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export interface LocalReply {
  readonly status: number;
  readonly flag: ResponseFlag;
  readonly message: string;
  readonly grpcStatus: number;
}

/**
 * Why the proxy answers itself: a flag names its default reply, and a flag that answers with several statuses
 * has one named reason per status beside it (a downstream protocol error is 400, 408, 413, 431 or 417).
 */
export const REASON = {
  BadRequest: 'DPE',
  HeadTimeout: 'DPE_HEAD_TIMEOUT',
  RequestTooLarge: 'DPE_TOO_LARGE',
  HeadersTooLarge: 'DPE_HEADERS_TOO_LARGE',
  UnsupportedExpectation: 'DPE_EXPECTATION',
} as const;
export type ReplyReason = ReplyFlag | (typeof REASON)[keyof typeof REASON];

/** The one place a reason becomes a status, flag, message and gRPC status (README "Response flags"). */
export const REPLIES: Readonly<Record<ReplyReason, LocalReply>> = {
  UH: { status: 503, flag: 'UH', message: 'no healthy upstream', grpcStatus: GRPC_STATUS.UNAVAILABLE },
  UF: { status: 503, flag: 'UF', message: 'upstream connect error', grpcStatus: GRPC_STATUS.UNAVAILABLE },
  UC: { status: 503, flag: 'UC', message: 'upstream connection terminated', grpcStatus: GRPC_STATUS.UNAVAILABLE },
  UT: { status: 504, flag: 'UT', message: 'upstream request timeout', grpcStatus: GRPC_STATUS.DEADLINE_EXCEEDED },
  NR: { status: 404, flag: 'NR', message: 'no route', grpcStatus: GRPC_STATUS.UNIMPLEMENTED },
  UPE: { status: 502, flag: 'UPE', message: 'upstream protocol error', grpcStatus: GRPC_STATUS.INTERNAL },
  DC: { status: 499, flag: 'DC', message: 'downstream disconnected', grpcStatus: GRPC_STATUS.CANCELLED },
  DPE: { status: 400, flag: 'DPE', message: 'bad request', grpcStatus: GRPC_STATUS.INTERNAL },
  DPE_HEAD_TIMEOUT: { status: 408, flag: 'DPE', message: 'request head timeout', grpcStatus: GRPC_STATUS.INTERNAL },
  DPE_TOO_LARGE: { status: 413, flag: 'DPE', message: 'request too large', grpcStatus: GRPC_STATUS.INTERNAL },
  DPE_HEADERS_TOO_LARGE: {
    status: 431,
    flag: 'DPE',
    message: 'request header fields too large',
    grpcStatus: GRPC_STATUS.INTERNAL,
  },
  DPE_EXPECTATION: { status: 417, flag: 'DPE', message: 'unsupported expectation', grpcStatus: GRPC_STATUS.INTERNAL },
  RL: { status: 429, flag: 'RL', message: 'rate limited', grpcStatus: GRPC_STATUS.RESOURCE_EXHAUSTED },
  RBAC: { status: 403, flag: 'RBAC', message: 'RBAC: access denied', grpcStatus: GRPC_STATUS.PERMISSION_DENIED },
  UO: { status: 503, flag: 'UO', message: 'upstream overflow', grpcStatus: GRPC_STATUS.UNAVAILABLE },
  FI: { status: 503, flag: 'FI', message: 'fault injected', grpcStatus: GRPC_STATUS.UNAVAILABLE },
  URX: { status: 503, flag: 'URX', message: 'retry limit exceeded', grpcStatus: GRPC_STATUS.UNAVAILABLE },
  IE: { status: 500, flag: 'IE', message: 'internal error', grpcStatus: GRPC_STATUS.INTERNAL },
};

export function localReply(reason: ReplyReason): LocalReply {
  return REPLIES[reason];
}

/** The gRPC status for an HTTP status, as gRPC clients map one (grpc/doc/http-grpc-status-mapping.md). */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return GRPC_STATUS.INTERNAL;
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS.UNAVAILABLE;
    default:
      return 2; // UNKNOWN
  }
}

/** A fault-injection abort (flag FI) with the status the route's policy names, built once at compile time. */
export function faultAbortReply(httpStatus: number | undefined, grpcStatus: number | undefined): LocalReply {
  const status = httpStatus ?? REPLIES.FI.status;
  return {
    status,
    flag: FLAG.FaultInjected,
    message: REPLIES.FI.message,
    grpcStatus: grpcStatus ?? (httpStatus === undefined ? REPLIES.FI.grpcStatus : grpcStatusForHttp(httpStatus)),
  };
}

/**
 * Where an upstream failure came from (after Pingora's ErrorSource): retries, breakers and flags read this,
 * never the message. `connect`: no connection or stream was established (nothing was processed);
 * `upstream-reset`: the upstream closed the connection or reset the stream; `timeout`: the request deadline;
 * `protocol`: the upstream's answer was not valid HTTP, or it does not speak the protocol asked for;
 * `forward`: the answer could not be forwarded downstream, or the request not sent (ForwardError);
 * `overflow`: the cluster's circuit-breaking thresholds refused it (flag UO): nothing was sent, and the
 * endpoint is not to blame.
 */
export type ErrorSource = 'connect' | 'upstream-reset' | 'timeout' | 'protocol' | 'forward' | 'overflow';

/** An upstream failure with the flag it maps to and whether the request may have reached the upstream. */
export class UpstreamError extends Error {
  readonly flag: ReplyFlag;
  readonly source: ErrorSource;
  /** False when nothing was sent (connect failure): a retry stage may then retry any method. */
  readonly requestSent: boolean;
  /** The HTTP/2 error code the upstream stream was closed with (its RST_STREAM, as node reports it); else null. */
  readonly http2Code: number | null;
  constructor(
    flag: ReplyFlag,
    source: ErrorSource,
    message: string,
    requestSent: boolean,
    cause?: unknown,
    http2Code: number | null = null,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'UpstreamError';
    this.flag = flag;
    this.source = source;
    this.requestSent = requestSent;
    this.http2Code = http2Code;
  }
}

/**
 * The exception boundary's error, for a throw the pools catch outside the pipeline's own try: a sink callback
 * threw while the upstream's answer was handed downstream (a field HTTP/2 refuses, a status it cannot carry...:
 * flag UPE), or a request deferred by the pool (an h2c session waiting for SETTINGS) could not be sent as it
 * was converted (flag IE, as the pipeline's try would have said). The pool has already dropped the exchange;
 * the context answers 502/500 or resets, and logs the cause.
 */
export class ForwardError extends UpstreamError {
  override readonly flag: 'UPE' | 'IE';
  constructor(cause: unknown, flag: 'UPE' | 'IE' = 'UPE') {
    super(
      flag,
      'forward',
      flag === 'UPE'
        ? `upstream response could not be forwarded: ${errorMessage(cause)}`
        : `request could not be sent upstream: ${errorMessage(cause)}`,
      flag === 'UPE',
      cause,
    );
    this.name = 'ForwardError';
    this.flag = flag;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
