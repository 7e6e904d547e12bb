/**
 * NSQ V2 error codes (nsq-spec §2.11). Every error frame's payload is `CODE description`.
 * Only the three `*_FAILED` codes for FIN/REQ/TOUCH leave the connection open; every other
 * error is fatal: the server sends the frame, then closes the socket.
 */
export const ErrorCode = {
  BadProtocol: 'E_BAD_PROTOCOL',
  Invalid: 'E_INVALID',
  BadBody: 'E_BAD_BODY',
  BadTopic: 'E_BAD_TOPIC',
  BadChannel: 'E_BAD_CHANNEL',
  BadMessage: 'E_BAD_MESSAGE',
  PubFailed: 'E_PUB_FAILED',
  MpubFailed: 'E_MPUB_FAILED',
  DpubFailed: 'E_DPUB_FAILED',
  SubFailed: 'E_SUB_FAILED',
  IdentifyFailed: 'E_IDENTIFY_FAILED',
  AuthFirst: 'E_AUTH_FIRST',
  AuthFailed: 'E_AUTH_FAILED',
  Unauthorized: 'E_UNAUTHORIZED',
  AuthDisabled: 'E_AUTH_DISABLED',
  AuthError: 'E_AUTH_ERROR',
  FinFailed: 'E_FIN_FAILED',
  ReqFailed: 'E_REQ_FAILED',
  TouchFailed: 'E_TOUCH_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const NON_FATAL: ReadonlySet<string> = new Set([ErrorCode.FinFailed, ErrorCode.ReqFailed, ErrorCode.TouchFailed]);

/** True when NSQ closes the connection after sending an error with this code. */
export function isFatalErrorCode(code: string): boolean {
  return !NON_FATAL.has(code);
}

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/**
 * An error that is sent to a client as an error frame. `message` is exactly the frame's text,
 * so a client library can surface it unchanged.
 */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly description: string;
  readonly fatal: boolean;

  constructor(code: ErrorCode, description: string, fatal: boolean = isFatalErrorCode(code)) {
    super(description === '' ? code : `${code} ${description}`);
    this.name = 'ProtocolError';
    this.code = code;
    this.description = description;
    this.fatal = fatal;
  }

  /**
   * Parses an error frame's payload (`CODE description`). A code outside NSQ v1.3.0's list (from
   * some other server) becomes a fatal `E_INVALID` whose description is the whole payload, so
   * `code` stays one of {@link ErrorCode} and nothing of the text is lost.
   */
  static fromFrame(data: Buffer): ProtocolError {
    const text = data.toString('latin1');
    const space = text.indexOf(' ');
    const code = space < 0 ? text : text.slice(0, space);
    if (!KNOWN_CODES.has(code)) return new ProtocolError(ErrorCode.Invalid, text, true);
    return new ProtocolError(code as ErrorCode, space < 0 ? '' : text.slice(space + 1));
  }
}
