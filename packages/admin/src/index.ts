export {
  type ActionResult,
  type AdminNotification,
  type ChannelAction,
  PER_NODE_ACTIONS,
  type TopicAction,
} from './actions.js';
export { Admin, createAdmin } from './admin.js';
export {
  type ChannelCounts,
  type ChannelNodeStats,
  type ChannelSummary,
  type ClientSummary,
  type ClusterError,
  ClusterReader,
  type ClusterSnapshot,
  type ClusterSources,
  compareVersions,
  type DeepestChannel,
  type LookupdSummary,
  type LookupState,
  type LookupTopic,
  type NodeSummary,
  type NodeTopic,
  type TopicNodeStats,
  type TopicSummary,
} from './cluster.js';
export { type CsrfRefusal, csrfRefusal } from './csrf.js';
export { adminUsage, parseAdminArgs } from './flags.js';
export { type AdminOptions, defaultAdminOptions, normalizeBasePath } from './options.js';
export { RateHistory, type RateHistoryOptions, type RateSeries } from './rate-history.js';
export { Upstream, UpstreamError } from './upstream.js';
export { adminVersionLine, VERSION } from './version.js';
