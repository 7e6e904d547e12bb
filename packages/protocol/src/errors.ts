/** nsq-spec §2.11: only the three `*_FAILED` codes leave the connection open. */
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

export function isFatalErrorCode(code: string): boolean {
  return !NON_FATAL.has(code);
}

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** `message` is exactly the error frame's text. */
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

  /** A code outside NSQ v1.3.0's list becomes a fatal `E_INVALID` with the whole payload as text. */
  static fromFrame(data: Buffer): ProtocolError {
    const text = data.toString('latin1');
    const space = text.indexOf(' ');
    const code = space < 0 ? text : text.slice(0, space);
    if (!KNOWN_CODES.has(code)) return new ProtocolError(ErrorCode.Invalid, text, true);
    return new ProtocolError(code as ErrorCode, space < 0 ? '' : text.slice(space + 1));
  }
}
