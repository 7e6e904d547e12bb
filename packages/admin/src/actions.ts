import type { ClusterError } from './cluster-model.js';

/** The changes nsqadmin makes to a cluster, and what it reports about them. */
export type TopicAction = 'create' | 'pause' | 'unpause' | 'empty' | 'delete' | 'tombstone';
export type ChannelAction = 'create' | 'pause' | 'unpause' | 'empty' | 'delete';

/** The actions that may be aimed at one node only (NSQ #430); the others act on the whole cluster. */
export const PER_NODE_ACTIONS: ReadonlySet<string> = new Set(['pause', 'unpause', 'empty']);

/** The JSON body POSTed to `--notification-http-endpoint` for every action (NSQ's AdminAction). */
export interface AdminNotification {
  action: string;
  topic: string;
  channel?: string;
  node?: string;
  /** Seconds since the epoch. */
  timestamp: number;
  user?: string;
  remote_ip: string;
  user_agent?: string;
  url: string;
  via: string;
}

/** What an action answers: the upstream calls that failed (none: it took effect everywhere). */
export interface ActionResult {
  action: string;
  topic: string;
  channel?: string;
  node?: string;
  /** A redrive: the dead letters moved, over every node. */
  moved?: number;
  errors: ClusterError[];
}
