#!/usr/bin/env node
/**
 * `npm run bench`: the scenarios of bench/scenarios/ (see bench/README.md and --help) against nsqd,
 * spawned fresh for each scenario, or against any NSQ-compatible broker on loopback. This file
 * parses the options, starts the brokers, runs each scenario through the registry and writes the
 * table, the JSON and the chart.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from './lib/bench.js';
import { httpRequest, startBroker } from './lib/broker.js';
import { listProfiles, summarizeProfiles } from './lib/cpuprofile.js';
import { parseArgs } from './lib/options.js';
import { gitCommit, machine, printSummary, writeResults } from './lib/report.js';
import { log } from './lib/util.js';
import { REGISTRY } from './scenarios/index.js';

/**
 * @import { Broker, Options, Scenario, ScenarioResult } from './lib/types.js'
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The scenario called `name`.
 * @param {string} name
 * @returns {Scenario}
 */
function scenarioNamed(name) {
  const s = REGISTRY.scenarios.find((x) => x.name === name);
  if (s === undefined) throw new Error(`unknown scenario ${name}`);
  return s;
}

/**
 * The broker for `scenario` (spawned with what it asks for), or the external one (no scenario).
 * @param {Options} opts
 * @param {Scenario} [scenario]
 * @returns {Promise<Broker>}
 */
async function launch(opts, scenario) {
  const spec = (await scenario?.broker?.(opts)) ?? {};
  const b = await startBroker(opts, spec.flags ?? [], {
    ...(spec.nofile !== undefined ? { nofile: spec.nofile } : {}),
    ...(spec.memQueueSize !== undefined ? { memQueueSize: spec.memQueueSize } : {}),
  });
  log(
    b.external
      ? `broker: external, tcp ${b.tcp.host}:${b.tcp.port}, http ${b.http.host}:${b.http.port}`
      : `broker: pid ${b.pid}: ${b.command}`,
  );
  return b;
}

async function main() {
  // Output piped into a reader that goes away (`| head`) must not end the run half-way.
  process.stdout.on('error', () => {});
  const opts = parseArgs(process.argv.slice(2), REGISTRY);
  const scenarios = opts.scenarios.map(scenarioNamed);
  // The whole run bounds itself: the sum of what each scenario may take, and a minute.
  const budgetMs = scenarios.reduce((a, s) => a + s.budgetSeconds(opts), 0) * 1000 + 60_000;
  const startedAt = new Date();

  const m = machine();
  const transportNote = opts.scenarios.includes('transport') ? ` (transport: ${opts.transportDuration} s)` : '';
  log(
    `nsq-ts bench: ${opts.scenarios.join(', ')}; ${opts.duration} s per phase${transportNote}; ${m.cpus} × ${m.cpuModel}; node ${m.node}`,
  );
  log(
    `load: ${opts.connections} publisher connections (MPUB ${opts.batchSize} × ${opts.msgSize} B, ${opts.pipeline} outstanding), ` +
      `${opts.connections} consumer connections (RDY ${opts.rdy}), one process each`,
  );

  // A spawned broker is fresh for every scenario (nothing left over from the previous one, as
  // NSQ's bench starts a new nsqd per run); an external one is shared and cleaned up by topic.
  const external = Boolean(opts.nsqdTcpAddress || opts.nsqdHttpAddress);
  for (const s of scenarios) s.setup?.(opts, external);
  const bench = new Bench(opts, external ? await launch(opts) : null);

  let aborting = false;
  /**
   * @param {string} why
   * @param {number} code
   */
  const abort = async (why, code) => {
    if (aborting) return;
    aborting = true;
    log(`\naborting: ${why}`);
    bench.killAll();
    await bench.broker?.stop();
    process.exit(code);
  };
  const watchdog = setTimeout(() => abort(`run exceeded its ${Math.round(budgetMs / 1000)} s budget`, 2), budgetMs);
  watchdog.unref();
  process.on('SIGINT', () => abort('interrupted', 130));
  process.on('SIGTERM', () => abort('terminated', 143));
  process.on('uncaughtException', (err) => abort(`uncaught error: ${err.stack ?? err.message}`, 1));

  /** @type {{ version?: string } | null} */
  let info = null;
  /** @type {string | null} */
  let version = null;
  /** @type {string | null} */
  let command = null;
  /** @type {ScenarioResult[]} */
  const results = [];
  try {
    for (const s of scenarios) {
      log(`\n== ${s.name}`);
      if (!external && !s.ownDaemons) {
        try {
          bench.broker = await launch(opts, s);
        } catch (err) {
          const message = /** @type {Error} */ (err).message;
          log(`  FAILED: ${message}`);
          results.push({ name: s.name, ok: false, error: message, phases: [], notes: [] });
          continue;
        }
      }
      // Null for a scenario that starts its own daemons (unless the broker is external).
      const broker = bench.broker;
      if (broker !== null) {
        if (info === null) {
          try {
            const res = await httpRequest(broker.http, 'GET', '/info');
            if (res.status === 200) info = JSON.parse(res.body);
          } catch {
            // /info is optional for this bench.
          }
        }
        version ??= info?.version ?? broker.version ?? null;
        command ??= broker.command;
      }
      const r = await bench.runScenario(s);
      if (broker !== null) {
        r.broker = {
          ...r.broker,
          tcpAddress: `${broker.tcp.host}:${broker.tcp.port}`,
          httpAddress: `${broker.http.host}:${broker.http.port}`,
          final: bench.brokerSample(),
        };
      }
      results.push(r);
      if (!external && broker !== null) {
        const profilesBefore = listProfiles(opts.brokerCpuProf);
        await broker.stop();
        bench.broker = null;
        r.cpuProfiles = summarizeProfiles(opts.brokerCpuProf, profilesBefore, r.phases);
      }
    }
  } finally {
    await bench.broker?.stop();
    clearTimeout(watchdog);
  }

  printSummary(results, m);
  writeResults(
    {
      startedAt: startedAt.toISOString(),
      commit: gitCommit(),
      machine: m,
      options: { ...opts, nsqdBin: external ? null : path.relative(ROOT, String(opts.nsqdBin)) },
      broker: {
        external,
        freshPerScenario: !external,
        command,
        version,
        identifyResponse: bench.identify ?? null,
      },
      scenarios: results,
    },
    String(opts.out),
  );
  // Scenarios with a verdict (soak) end the output with it.
  for (const r of results) if (r.verdict) log(`${r.name}: ${r.verdict}`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});
