export { type ConfigTable, loadConfigFile } from './config-file.js';
export {
  type DaemonFlags,
  HTTP_AUTH_FLAGS,
  logLevelFlag,
  readDaemonFlags,
} from './daemon-flags.js';
export {
  bearerMatches,
  constantTimeEqual,
  createV1App,
  EMPTY,
  goJson,
  HTTP_SERVER_TIMEOUTS,
  type HttpAuthOptions,
  HttpError,
  JSON_TYPE,
  JsonText,
  sendError,
  sendUnauthorized,
  TEXT_TYPE,
  Text,
  type V1App,
  type V1AppOptions,
  type V1Handler,
} from './http-v1.js';
export { type Daemon, type DaemonArgs, type DaemonMain, runDaemon } from './run-daemon.js';
