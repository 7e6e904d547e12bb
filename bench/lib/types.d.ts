// The shapes the bench's modules hand each other and write to bench/results/<timestamp>.json.
import type { OPTIONS } from '../scenarios/index.js';
import type { Bench } from './bench.js';

/** One command-line option: how it shows in --help and how its text becomes a value. */
export interface OptionSpec<T> {
  /** The value's placeholder in --help: N, LIST, SECONDS, … */
  arg: string;
  /** The value when the option is not given, as it would be written (parse turns it into the value). */
  default: string | number | null;
  /** How --help shows the default when `default` does not say it (e.g. "cores, max 4"). */
  defaultText?: string;
  help: string;
  /** `flag` is the option as written (for error messages). */
  parse(raw: string | number | null, flag: string): T;
}

export type OptionValues<S> = { [K in keyof S]: S[K] extends OptionSpec<infer T> ? T : never };

/** Every option of the run and of every scenario, parsed; `scenarios` is --scenario with its groups expanded. */
export type Options = OptionValues<typeof OPTIONS> & { scenarios: string[] };

/** What a scenario's spawned broker needs besides the run's flags. */
export interface BrokerSpec {
  flags?: string[];
  /** Instead of --mem-queue-size of the run. */
  memQueueSize?: number;
  /** Open-file limit to raise the broker's to. */
  nofile?: number;
}

export interface Scenario {
  name: string;
  /** One line in --help. */
  description: string;
  /** Its own options (shown under it in --help); shared ones may appear under several scenarios. */
  options: Record<string, OptionSpec<unknown>>;
  /** A group that `--scenario <group>` runs. */
  group?: 'perf' | 'storage';
  /** Left out of `all` (minutes each): run by name or with its group. */
  slow?: boolean;
  /** Starts its own daemons: the run spawns no broker and makes no topic for it. */
  ownDaemons?: boolean;
  /** Checks across options, once they are all parsed. */
  check?(opts: Options): void;
  /** Once, before the run starts a broker (`external`: --nsqd-* addresses were given). */
  setup?(opts: Options, external: boolean): void;
  /** Its spawned broker's extra flags and limits. */
  broker?(opts: Options): BrokerSpec | Promise<BrokerSpec>;
  /** The longest it may take, seconds (the run's budget is the sum). */
  budgetSeconds(opts: Options): number;
  run(b: Bench, result: RunningResult): Promise<void>;
}

export interface HostPort {
  host: string;
  port: number;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  error?: string;
}

export interface ExternalBroker {
  external: true;
  tcp: HostPort;
  http: HostPort;
  pid: null;
  command: null;
  version?: undefined;
  stop(): Promise<void>;
}

export interface RestartInfo {
  exit: ExitInfo | null;
  stopMs: number;
  killed: boolean;
  startMs: number;
}

export interface SpawnedBroker {
  external: false;
  tcp: HostPort;
  http: HostPort;
  pid: number | null;
  dataPath: string;
  logPath: string;
  command: string;
  version: string | null;
  logTail(): string;
  isRunning(): boolean;
  exitInfo(): ExitInfo | null;
  stop(): Promise<void>;
  restart(options?: { timeoutMs?: number }): Promise<RestartInfo>;
}

export type Broker = ExternalBroker | SpawnedBroker;

/** A procStats sample of a local process. */
export interface ProcSample {
  rssKiB: number | null;
  peakRssKiB: number | null;
  threads: number | null;
  userMs: number;
  systemMs: number;
  at: number;
  /** The process the sample is of (set by the soak, whose broker changes pid at a restart). */
  pid?: number | null;
}

export interface CpuUse {
  cpuMs: number;
  wallMs: number;
  pct: number;
}

/** The counters every generator reports (progress and result). Times: process.hrtime ms. */
export interface WorkerStats {
  msgs: number;
  bytes: number;
  redeliveries: number;
  batches: number;
  heartbeats: number;
  softErrors: number;
  startAt: number;
  firstAt: number;
  lastAt: number;
  stopAt: number;
  cpuMs?: number;
  closeWait?: boolean;
}

export interface LatencySummary {
  n: number;
  minMs: number | null;
  p50Ms: number | null;
  p90Ms?: number | null;
  p99Ms: number | null;
  p999Ms?: number | null;
  maxMs: number | null;
  meanMs: number | null;
  histogramMs?: { le: number | 'inf'; n: number }[];
}

export interface ScrapeSummary extends LatencySummary {
  path: string;
  warmupMs: number;
  bytes: number;
  latenciesMs: number[];
}

/** [from, to) of sequence numbers. */
export type SeqRange = [number, number];

/** What a generator reported at its end (`ok: false`: its error), with its role's extras. */
export interface WorkerResult extends WorkerStats {
  ok: boolean;
  error?: string;
  endAt?: number;
  cpu?: { userMs: number; systemMs: number; wallMs: number; pct: number };
  scrapes?: ScrapeSummary[];
  latency?: LatencySummary;
  warmupSkipped?: number;
  sent?: number;
  maxOutstanding?: number;
  maxBurst?: number;
  rate?: number;
  window?: number;
  connections?: number;
  connect?: { cpuMs: number; wallMs: number } | null;
  nextSeq?: number;
  uncertain?: SeqRange[];
  failed?: SeqRange[];
  commands?: { mpub: number; pub: number; dpub: number };
  skipped?: number;
  reconnects?: number;
  counts?: Record<string, number>;
  bitmaps?: Record<string, string>;
  clientStats?: unknown;
  /** hostile-worker: the most bytes written at once on connections still open. */
  maxHeldBytes?: number;
}

/** What a worker tells the parent over IPC (worker-common.js); progress, done and error carry its counters. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'identify'; info: unknown }
  | { type: 'log'; message: string }
  | ({ type: 'progress' } & WorkerStats)
  | ({ type: 'done' } & Omit<WorkerResult, 'ok' | 'error'>)
  | ({ type: 'error'; message: string } & WorkerStats);

/** What the parent sends a generator first: the harness's fields plus its role's. */
export interface GenConfig {
  role: string;
  index: number | string;
  name?: string;
  /** The script to fork (default load-worker.js). */
  worker?: string;
  host?: string;
  port?: number;
  hardDeadlineMs: number;
  [key: string]: unknown;
}

/** What every worker gets in its config (Bench.gen sets them; a role reads what it needs). */
export interface WorkerConfig {
  role: string;
  index: number | string;
  host: string;
  port: number;
  hardDeadlineMs: number;
  msgSize: number;
  batchSize: number;
  pipeline: number;
  rdy: number;
  heartbeatInterval: number;
  maxMessages: number;
  topic: string;
  channel: string;
  /** sub: answer every message with `REQ <id> 0` instead of FIN (policy-memory's dead letters). */
  requeue?: boolean;
  /** pub: an `E_MPUB_FAILED` (a topic at its cap) is counted in softErrors and the batch dropped, not fatal. */
  refusable?: boolean;
}

/** The worker side of the harness: what runWorker hands a role. */
export interface WorkerHandle {
  /** What the parent sees as progress and in the result. */
  stats: WorkerStats;
  send(msg: object): void;
  log(message: string): void;
  ready(): void;
  /** `n` messages acknowledged or handled, `bytes` of bodies. */
  count(n: number, bytes: number): void;
  /** Reports the result (plus `extra`) and exits. */
  finish(extra?: object): void;
  /** Reports an error and exits. */
  fail(message: string): void;
  readonly finished: boolean;
}

/** A worker role, made by runWorker's createRole once the config is in. */
export interface WorkerRole {
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
  /** Any other message of the parent's (e.g. the soak's pause / resume). */
  control?(msg: { type: string }): void | Promise<void>;
  /** Instead of failing when no result came STOP_GRACE_MS after stop. */
  stopTimeout?(): void;
  /** When the worker shuts down. */
  close?(): void;
}

/** One line of a phase's progress (one a second). */
export interface TickSample {
  t: number;
  rates: number[];
  totals: number[];
  brokerCpuPct: number | null;
  brokerRssKiB: number | null;
  watchedCpuPct?: (number | null)[];
  pid?: number | null;
}

export interface WatchedUse {
  name: string;
  cpuPct: number | null;
  cpuMs: number | null;
  rssKiB: number | null;
}

/** A timed window: its samples and the CPU use over it. */
export interface Timeline {
  samples: TickSample[];
  wallMs: number;
  broker: { cpuPct: number; cpuMs: number; rssKiB: number | null } | null;
  machineCpuPct: number | null;
  otherCpuPct: number | null;
}

/** Timeline from Bench.tick: also the watched daemons and the generators. */
export interface TickTimeline extends Timeline {
  watched: WatchedUse[];
  gensCpuPct: number;
}

export interface GeneratorRow {
  name: string;
  msgs?: number;
  batches?: number;
  redeliveries?: number;
  closeWait?: boolean;
  heartbeats?: number;
  softErrors?: number;
  cpuPct: number;
  cpuUserMs?: number;
  cpuSystemMs?: number;
  connections?: number;
  cpuMs?: number;
  connectMs?: number;
}

export interface TimelineRow {
  t: number;
  msgsPerSec?: number;
  total?: number;
  brokerCpuPct: number | null;
  brokerRssKiB: number | null;
}

export interface TransportFlags {
  tls: boolean;
  tlsVersion: string | null;
  tlsCipherSuite: string | null;
  snappy: boolean;
  deflate: boolean;
}

export interface NsqdShare {
  name: string;
  cpus: string | null;
  cpuPct: number | null;
  rssMiB: number | null;
  msgs: number;
  msgsPerSec: number;
}

/** One row of the table and of a scenario's `phases` in the JSON. */
export interface PhaseRow {
  phase: string;
  /** What the chart makes of it: 'throughput', 'latency', 'memory', 'idle', 'startup'. */
  kind?: string;
  role: string;
  msgs: number;
  bytes: number;
  seconds: number;
  startAtMs?: number;
  endAtMs?: number;
  msgsPerSec: number;
  mibPerSec: number;
  redeliveries?: number;
  generators: GeneratorRow[];
  broker: Timeline['broker'];
  machineCpuPct: number | null;
  otherCpuPct: number | null;
  timeline: TimelineRow[];
  note?: string;
  complete?: boolean;
  expected?: number;
  channels?: number;
  perChannel?: { channel: string; msgs: number; msgsPerSec: number }[];
  totalOutPerSec?: number;
  backlogPerChannel?: number;
  connections?: number;
  window?: number;
  offeredRate?: number;
  delivered?: number;
  deliveredPerSec?: number;
  latency?: LatencySummary;
  warmupSkipped?: number;
  publisher?: { sent?: number; maxOutstanding?: number; maxBurst?: number };
  requests?: number;
  requestsPerSec?: number;
  clients?: number;
  processes?: number;
  httpClient?: string;
  responseBytes?: number;
  client?: string;
  mode?: string;
  transport?: Record<string, boolean | number>;
  negotiated?: TransportFlags[];
  batchesPerSec?: number;
  variant?: string;
  nsqds?: NsqdShare[];
  lookupdCpuPct?: number | null;
  gensCpuPct?: number;
  brokersCpuPct?: number;
  backlog?: number;
}

/** One topic of /stats (nsq-ts's extension keys optional: another broker may lack them). */
export type { TopicStats } from '@nsq-ts/protocol';

/** One broker channel's counts from /stats. */
export interface ChannelCounts {
  topicDepth: number;
  depth: number;
  backendDepth: number;
  inFlight: number;
  deferred: number;
  messageCount: number;
}

export interface RssPoint {
  t: number;
  rssMiB: number | null;
  phase?: string;
  pid?: number | null;
}

export interface DiskUse {
  dataPathBytes: number | null;
  topicBytes: number | null;
  stats?: ChannelCounts | null;
}

/** rss-1m */
export interface MemoryResult {
  messages: number;
  msgSize: number;
  baseRssMiB: number | null;
  afterPublishRssMiB: number | null;
  afterSettleRssMiB: number | null;
  peakRssMiB: number | null;
  bytesPerMessageAfterPublish: number | null;
  bytesPerMessageAfterSettle: number | null;
  depth: { topic: number | null; channel: number | null } | null;
  brokerMemoryStats: unknown;
}

/** idle-conns (connections …) and idle-topics (topics, rssMiB). */
export interface IdleResult {
  idleCpuPct: number | null;
  connections?: number;
  processes?: number;
  heartbeatIntervalMs?: number;
  brokerFds?: { open: number; limit: number | null } | null;
  baseRssMiB?: number | null;
  connectedRssMiB?: number | null;
  idleEndRssMiB?: number | null;
  rssPerConnectionKiB?: number | null;
  heartbeats?: number;
  topics?: number | null;
  rssMiB?: number | null;
}

export interface MinMax {
  min: number | null;
  max: number | null;
}

/** overflow */
export interface StorageResult {
  messages: number;
  msgSize: number;
  memQueueSize: number;
  baseRssMiB: number | null;
  rss: MinMax & { publish: MinMax; drain: MinMax };
  rssGrowthMiB: number | null;
  rssGrowthPctOfDisk: number | null;
  diskAtPeak: DiskUse;
  diskAfterDrain: DiskUse;
  rssSeries: RssPoint[];
}

/** soak */
export interface SoakResult {
  verdict: string;
  problems: string[];
  minutes: number;
  offeredRate: number;
  memQueueSize: number;
  msgTimeoutMs: number;
  cycleSeconds: number;
  restarts: (RestartInfo & { at: number; pid: number | null; consumersPaused: boolean })[];
  drained: boolean;
  drainSeconds: number;
  finalChannel: ChannelCounts | null;
  published: Record<string, unknown>;
  consumed: Record<string, number>;
  lost: number;
  lostSample: string[];
  unexpected: number;
  rss: { min: number; max: number };
  rssSeries: RssPoint[];
  restartMarks: number[];
}

export interface StartupTarget {
  name: string;
  pingMs: { median: number; min: number; max: number };
  tcpAcceptMs: { median: number; max: number } | null;
  overFloorMs: number;
  samplesMs: number[];
}

/** What `node --cpu-prof` writes (V8's CPU profile), as far as the summary reads it. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
  startTime?: number;
  endTime?: number;
}

/** A span of CLOCK_MONOTONIC ms (process.hrtime) to summarise a profile over. */
export interface ProfileWindow {
  fromMs: number;
  toMs: number;
}

export interface ProfileSummary {
  file?: string;
  totalMs: number;
  wallMs: number;
  span: { fromMs: number; toMs: number };
  categories: Record<'idle' | 'gc' | 'program' | 'js', { ms: number; pct: number }>;
  functions: { name: string; where: string; selfMs: number; pct: number }[];
  files: { file: string; selfMs: number; pct: number }[];
  windows?: (ProfileSummary & ProfileWindow & { phase: string })[];
}

/** The result of a scenario that runs: it has its own topic and channel. */
export type RunningResult = ScenarioResult & { topic: string; channel: string };

/** One scenario's part of the JSON. */
export interface ScenarioResult {
  name: string;
  topic?: string;
  channel?: string;
  ok: boolean;
  phases: PhaseRow[];
  notes: string[];
  error?: string;
  broker?: {
    rssKiB?: number | null;
    peakRssKiB?: number | null;
    threads?: number | null;
    cpu?: CpuUse | null;
    tcpAddress?: string;
    httpAddress?: string;
    final?: ProcSample | null;
  };
  cpuProfiles?: ProfileSummary[];
  verdict?: string;
  backlog?: number;
  brokerHas?: { topics: number; channels: number; messages: number };
  body?: { kind: string; deflateRatioPerBatch: number };
  prepublish?: PhaseRow[];
  memory?: MemoryResult;
  idle?: IdleResult;
  /** hostile-memory: its readings (see the scenario). */
  hostile?: Record<string, unknown>;
  /** policy-memory: each case's readings (see the scenario). */
  policyMemory?: Record<string, unknown>;
  brokerFdLimit?: number | null;
  storage?: StorageResult;
  soak?: SoakResult;
  scale?: { cores: number; connections: number; variants: string[]; speedup?: Record<string, Record<string, number>> };
  startup?: { runs: number; topics: number; floorMedianMs: number; targets: StartupTarget[] };
}

export interface Machine {
  cpuModel: string;
  cpus: number;
  totalMemMiB: number;
  platform: string;
  node: string;
}

/** bench/results/<timestamp>.json */
export interface RunOutput {
  startedAt: string;
  commit: string | null;
  machine: Machine;
  options: Record<string, unknown>;
  broker: {
    external: boolean;
    freshPerScenario: boolean;
    command: string | null;
    version: string | null;
    identifyResponse: unknown;
  };
  scenarios: ScenarioResult[];
}
