export {
  type ActionResult,
  Admin,
  type AdminNotification,
  type ChannelAction,
  createAdmin,
  type TopicAction,
} from './admin.js';
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
  type LookupState,
  type LookupTopic,
  type NodeSummary,
  type NodeTopic,
  type TopicNodeStats,
  type TopicSummary,
} from './cluster.js';
export { adminUsage, parseAdminArgs } from './flags.js';
export { type AdminOptions, defaultAdminOptions, normalizeBasePath } from './options.js';
export { Upstream, UpstreamError } from './upstream.js';
export { adminVersionLine, VERSION } from './version.js';
