export { type Clock, systemClock, type TimerHandle } from './clock.js';
export { type ConfigTable, loadConfigFile } from './config-file.js';
export {
  type DaemonFlags,
  HTTP_AUTH_FLAGS,
  logLevelFlag,
  readDaemonFlags,
} from './daemon-flags.js';
export { createV1App, sendError, sendUnauthorized, type V1App, type V1Handler } from './fastify-v1.js';
export { cleanPath, escapePath, GoRouter, type RouteMatch, type RouteMiss } from './go-router.js';
export {
  bearerMatches,
  constantTimeEqual,
  createV1Router,
  EMPTY,
  goDurationParam,
  goJson,
  HTTP_SERVER_TIMEOUTS,
  type HttpAuthOptions,
  HttpError,
  JSON_TYPE,
  JsonText,
  type PlainHandler,
  TEXT_TYPE,
  Text,
  type V1AppOptions,
  type V1Request,
  type V1Router,
  type V1RouterOptions,
} from './http-v1.js';
export { listen } from './listen.js';
export { type Daemon, type DaemonArgs, type DaemonMain, runDaemon } from './run-daemon.js';
