import { ProtocolError } from '@nsq-ts/protocol';

export { ProtocolError };

/**
 * Codes of errors raised by the client itself rather than sent by nsqd. Server errors are
 * {@link ProtocolError}s carrying NSQ's own code (`E_BAD_TOPIC`, `E_PUB_FAILED`, …).
 */
export const ClientErrorCode = {
  /** The connection closed before the server answered. */
  ConnectionClosed: 'E_CONNECTION_CLOSED',
  /** Connecting, the handshake or a publish took longer than its deadline. */
  Timeout: 'E_TIMEOUT',
  /** The producer or consumer was closed. */
  Closed: 'E_CLOSED',
  /** The server answered something the protocol does not allow here. */
  UnexpectedResponse: 'E_UNEXPECTED_RESPONSE',
  /** The server would not grant a configured feature (TLS, snappy, deflate, feature negotiation). */
  Unsupported: 'E_UNSUPPORTED',
  /** nsqd requires AUTH and no `authSecret` is configured. */
  AuthRequired: 'E_AUTH_REQUIRED',
  /** An argument was refused before anything was sent (bad topic name, empty body, …). */
  InvalidArgument: 'E_INVALID_ARGUMENT',
} as const;

/** One of the {@link ClientErrorCode} values. */
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** An error raised by the client (not an nsqd error frame); `code` is a {@link ClientErrorCode}. */
export class ClientError extends Error {
  /** Stable machine-readable code. */
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code} ${message}`, options);
    this.name = 'ClientError';
    this.code = code;
  }
}

/** Any error a publish or a connection can fail with: both carry an NSQ-style `code`. */
export type NsqError = ProtocolError | ClientError;
