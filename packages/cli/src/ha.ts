/** `nsq ha status|handover`: a replica group's members (README "Replication") through their GET /ha and POST /ha/handover. */

import type { FlagSpec } from '@nsq-ts/go-compat';
import { type HaCounters, type HaStatus, haHandover, haStatus } from '@nsq-ts/http-client';
import { CliError } from './args.js';
import { type Context, checkAddress } from './context.js';
import { gather, withHttp } from './http.js';

export const HA_FLAGS: readonly FlagSpec[] = [
  { name: 'json', type: 'bool', default: false, usage: 'status: one JSON object per member (GET /ha, plus "address")' },
  { name: 'to', type: 'string', default: '', usage: 'handover: the in-sync member to prefer as the next leader' },
];

export async function ha(ctx: Context): Promise<void> {
  const [action] = ctx.args.positionals;
  if (action !== 'status' && action !== 'handover') {
    throw new CliError(`unknown ha action ${JSON.stringify(action)} (status or handover)`, 2);
  }
  if (ctx.nsqdHttp.length === 0) throw new CliError('give --nsqd-http-address (a member of the group)', 2);
  for (const a of ctx.nsqdHttp) checkAddress('nsqd-http-address', a.replace(/^https?:\/\//, ''));
  const got = await gather(ctx.nsqdHttp, async (address) => ({
    address,
    status: await withHttp((http) => haStatus(http, address)),
  }));
  for (const e of got.errors) ctx.warn(e);
  if (got.results.length === 0) throw new CliError('no nsqd answered');
  if (action === 'status') {
    for (const { address, status } of got.results) {
      if (ctx.args.bool('json')) ctx.out(JSON.stringify({ address, ...status }));
      else for (const line of describe(address, status)) ctx.out(line);
    }
    return;
  }
  // Handover is asked of the leader: the member given, or the one among those given that leads.
  const leader = got.results.find((r) => r.status.role === 'leader');
  if (leader === undefined) {
    const known = got.results[0]?.status.leader ?? 'none';
    throw new CliError(`none of the addresses given is the leader (the leader is ${known})`);
  }
  const to = ctx.args.string('to');
  await withHttp((http) => haHandover(http, leader.address, to === '' ? undefined : to));
  ctx.out(`${leader.address}: ${leader.status.member_id} handed over leadership of epoch ${leader.status.epoch}`);
}

function describe(address: string, s: HaStatus): string[] {
  const lines = [
    `${address}: member ${s.member_id} of group ${s.group}, ${s.role}, epoch ${s.epoch}, leader ${s.leader ?? 'none'}`,
    `  members: ${s.members.join(',') || '-'}  in sync: ${s.in_sync.join(',') || '-'}  position: seq ${s.position.seq} (epoch ${s.position.epoch})  acks: ${s.replication_ack}, min-insync ${s.min_insync}`,
  ];
  lines.push(`  events: ${events(s.counters)}`);
  if (s.role === 'leader') {
    for (const f of s.followers ?? []) {
      const state = `${f.connected ? 'connected' : 'disconnected'}, ${f.in_sync ? 'in sync' : 'not in sync'}`;
      const refused = f.refused ? `, refused: ${f.refused}` : '';
      lines.push(`  follower ${f.member_id}: ${state}, lag ${f.lag_batches} batches, ${f.lag_ms} ms${refused}`);
    }
  } else {
    const last =
      s.last_batch_ms_ago === undefined || s.last_batch_ms_ago < 0 ? 'none' : `${s.last_batch_ms_ago} ms ago`;
    const refused = s.refused ? `, refused: ${s.refused}` : '';
    lines.push(
      `  stream: ${s.connected === true ? 'connected' : 'disconnected'}, lag ${s.lag_batches ?? 0} batches, last batch ${last}${refused}`,
    );
  }
  return lines;
}

/** The counters on one line; a term's end only by the reasons that happened. */
function events(c: HaCounters | undefined): string {
  if (c === undefined) return '-';
  const lost = Object.entries(c.leadership_lost).filter(([, n]) => n > 0);
  const lostText = lost.length === 0 ? '0' : lost.map(([reason, n]) => `${n} ${reason}`).join(', ');
  return [
    `elections won ${c.elections_won}`,
    `leadership lost ${lostText}`,
    `in-sync shrinks ${c.isr_shrinks}, expands ${c.isr_expands}`,
    `full copies served ${c.full_copies_served}, received ${c.full_copies_received}`,
    `publishes refused ${c.refused_publishes}, unanswered ${c.unanswered_publishes}`,
    `streams refused ${c.stream_refusals_sent} sent, ${c.stream_refusals_received} received`,
  ].join('; ');
}
