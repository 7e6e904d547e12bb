import { ErrorCode, ProtocolError } from '@nsq-ts/protocol';

export { ErrorCode, ProtocolError };

/** Errors of the client itself; nsqd's are {@link ProtocolError}s with NSQ's code. */
export const ClientErrorCode = {
  /** The TCP connection could not be made (refused, unreachable, unknown host); retried. */
  ConnectFailed: 'E_CONNECT_FAILED',
  ConnectionClosed: 'E_CONNECTION_CLOSED',
  /** Connecting, the handshake or a publish took longer than its deadline. */
  Timeout: 'E_TIMEOUT',
  Closed: 'E_CLOSED',
  /** The server answered something the protocol does not allow here. */
  UnexpectedResponse: 'E_UNEXPECTED_RESPONSE',
  /** The peer does not speak NSQ's TCP protocol (e.g. an HTTP port was given); not retried. */
  NotNsqd: 'E_NOT_NSQD',
  /** The server would not grant a configured feature (TLS, snappy, deflate); not retried. */
  Unsupported: 'E_UNSUPPORTED',
  /** The TLS handshake failed (e.g. the certificate did not verify); not retried. */
  TlsFailed: 'E_TLS_FAILED',
  /** nsqd requires AUTH and no `authSecret` is configured; not retried. */
  AuthRequired: 'E_AUTH_REQUIRED',
  /** An argument or option was refused before anything was sent (bad topic, body, address, …). */
  InvalidArgument: 'E_INVALID_ARGUMENT',
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

export class ClientError extends Error {
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code} ${message}`, options);
    this.name = 'ClientError';
    this.code = code;
  }
}

/** Any error a publish or a connection can fail with: both carry an NSQ-style `code`. */
export type NsqError = ProtocolError | ClientError;

const PERMANENT_CLIENT_CODES: ReadonlySet<string> = new Set([
  ClientErrorCode.NotNsqd,
  ClientErrorCode.Unsupported,
  ClientErrorCode.TlsFailed,
  ClientErrorCode.AuthRequired,
  ClientErrorCode.InvalidArgument,
]);

/** nsqd's answers to a handshake that no retry can change: the configuration must. */
const PERMANENT_HANDSHAKE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.AuthFailed,
  ErrorCode.AuthDisabled,
  ErrorCode.Unauthorized,
  ErrorCode.IdentifyFailed,
  ErrorCode.BadBody,
  ErrorCode.BadTopic,
  ErrorCode.BadChannel,
  ErrorCode.Invalid,
]);

/** A failed connection attempt retrying cannot fix: the client reports it and stops trying. */
export function isPermanentFailure(error: Error): boolean {
  if (error instanceof ClientError) return PERMANENT_CLIENT_CODES.has(error.code);
  if (error instanceof ProtocolError) return PERMANENT_HANDSHAKE_CODES.has(error.code);
  return false;
}

/** nsqd's `--tls-required` refusal of any command before TLS (nsq-spec §2.5). */
export function isTlsRequired(error: Error): boolean {
  return error instanceof ProtocolError && error.code === ErrorCode.Invalid && error.message.endsWith('(TLS required)');
}

/** A ProtocolError whose text says what to change when it is nsqd's refusal of our configuration. */
export function explainRefusal(error: ProtocolError, address: string): ProtocolError {
  let hint = '';
  if (isTlsRequired(error)) hint = 'nsqd requires TLS (--tls-required): set the tls option';
  else if (error.code === ErrorCode.AuthFailed) hint = 'nsqd refused the authSecret';
  else if (error.code === ErrorCode.AuthDisabled) hint = 'authSecret is set but nsqd has no --auth-http-address';
  else if (error.code === ErrorCode.Unauthorized) hint = 'the authSecret has no permission for this';
  const description = `${error.description} (nsqd ${address}${hint === '' ? '' : `: ${hint}`})`;
  return new ProtocolError(error.code, description, error.fatal);
}
