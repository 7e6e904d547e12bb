export {
  createV1App,
  EMPTY,
  goJson,
  HttpError,
  JSON_TYPE,
  JsonText,
  sendError,
  TEXT_TYPE,
  Text,
  type V1App,
  type V1Handler,
} from './http-v1.js';
export { type Daemon, type DaemonArgs, type DaemonMain, runDaemon } from './run-daemon.js';
