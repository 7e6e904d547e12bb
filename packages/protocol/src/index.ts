// Only what users and the other packages need; codec internals and test fixtures stay inside.
export {
  type Command,
  CommandDecoder,
  type CommandDecoderOptions,
  type CommandHandler,
  finCommand,
  MAX_LINE_BYTES,
  type MpubMessages,
} from './command-decoder.js';
export { encodeCommand, encodeMpubBody, MAGIC_V2, type MpubBodyError, scanMpubBody } from './commands.js';
export {
  type ByteStream,
  compressionLayer,
  DeflateOutput,
  deflateInput,
  type InputFilter,
  type OutputSink,
  SnappyOutput,
  snappyInput,
} from './compression-layers.js';
export { crc32c } from './crc32c.js';
export { deflateSegment, InflateError } from './deflate.js';
export { ErrorCode, isFatalErrorCode, ProtocolError } from './errors.js';
export { FrameDecodeError, FrameDecoder } from './frame-decoder.js';
export {
  CLOSE_WAIT,
  CLOSE_WAIT_FRAME,
  type DecodedMessage,
  decodeMessage,
  encodeErrorFrame,
  encodeFrame,
  encodeResponse,
  FRAME_HEADER_BYTES,
  FrameType,
  HEARTBEAT,
  HEARTBEAT_FRAME,
  MESSAGE_HEADER_BYTES,
  OK,
  OK_FRAME,
  writeMessageHeaderRaw,
} from './frames.js';
export {
  decodeGoJsonFields,
  decodeIdentifyBody,
  IdentifyDecodeError,
  type IdentifyRequest,
  type IdentifyResponse,
  type JsonFieldKind,
} from './identify.js';
export {
  encodeLookupResponse,
  isLookupError,
  type LookupIdentifyBody,
  type LookupIdentifyResponse,
  type LookupNode,
  type LookupPeer,
  LookupResponseDecodeError,
  LookupResponseDecoder,
  MAGIC_V1,
} from './lookup-v1.js';
export { MESSAGE_ID_LENGTH, messageIdHex } from './message-id.js';
export { isEphemeralName, isValidChannelName, isValidTopicName, MAX_NAME_LENGTH } from './names.js';
export { SnappyError, SnappyFrameDecoder, SnappyFrameEncoder } from './snappy.js';
export type {
  ChannelStats,
  ClientStats,
  E2eLatencyStats,
  MemStats,
  PubCount,
  StatsSnapshot,
  TopicStats,
} from './stats-types.js';
