/**
 * nsqadmin in a real headless Chromium (Debian's `chromium`, driven by playwright-core) against a
 * running local cluster (in-process lookupd + two nsqds): a paused channel's backlog on the Topics
 * list, the node page, a per-node empty, rates falling to 0 while no browser is connected, the
 * counter page, an inactive topic deleted from the lookup page, cross-origin pages whose forged
 * actions are refused (with and without the login cookie) while the UI's own work, and pause /
 * empty / delete by clicking and confirming. Screenshots of each page go to test/artifacts/
 * (git-ignored); scripts/admin-screenshots.js makes the ones in docs/. Skips only when
 * /usr/bin/chromium is absent (.ci/run installs it).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Admin, createAdmin, type TopicSummary } from '@nsq-ts/admin';
import { Consumer } from '@nsq-ts/client';
import { eventually, startLookupd, startNsqd, type TestLookupd, type TestNsqd } from '@nsq-ts/test-utils';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, hasChromium, launchChromium } from './support/chromium.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, 'test/artifacts');
const SAMPLE_INTERVAL_MS = 250;

if (!hasChromium) {
  console.warn(`nsqadmin browser tests SKIPPED: ${CHROMIUM} is not installed (apt-get install -y chromium)`);
}

interface TopicStats {
  topics: null | Array<{
    topic_name: string;
    paused: boolean;
    channels: Array<{ channel_name: string; depth: number; paused: boolean }>;
  }>;
}

/**
 * The attacker's page, on another origin (another port of 127.0.0.1: same-site, so even a
 * SameSite=Strict login cookie goes along). It tries what a page can do without CORS — no-cors
 * POSTs (a pause with a JSON text/plain body, a delete) and a hidden text/plain form — plus a
 * DELETE, which needs a preflight. `?target=` is the admin's URL, `?topic=` the victim.
 */
const EVIL_PAGE = `<!doctype html><title>evil</title><iframe name="sink"></iframe><script>
const q = new URLSearchParams(location.search);
const target = q.get('target');
const topic = q.get('topic');
const form = document.createElement('form');
form.method = 'POST';
form.enctype = 'text/plain';
form.target = 'sink';
form.action = target + 'api/topic/delete?topic=' + topic;
const input = document.createElement('input');
input.name = '{"topic":"' + topic + '","x":"';
input.value = '"}';
form.appendChild(input);
document.body.appendChild(form);
const posted = new Promise((resolve) => document.querySelector('iframe').addEventListener('load', resolve, { once: true }));
form.submit();
Promise.allSettled([
  fetch(target + 'api/topics/' + topic, { method: 'POST', mode: 'no-cors', credentials: 'include', body: '{"action":"pause"}' }),
  fetch(target + 'api/topic/delete?topic=' + topic, { method: 'POST', mode: 'no-cors', credentials: 'include' }),
  fetch(target + 'api/topics/' + topic, { method: 'DELETE', credentials: 'include', headers: { 'X-Requested-With': 'x' } }),
  posted,
]).then((r) => { document.title = 'done ' + r.map((x) => x.status).join(','); });
</script>`;

describe.skipIf(!hasChromium)(`nsqadmin in Chromium (skipped when ${CHROMIUM} is absent)`, () => {
  let lookupd: TestLookupd;
  let nsqds: TestNsqd[] = [];
  let admin: Admin;
  let evil: Server;
  let evilUrl = '';
  let consumer: Consumer | null = null;
  let context: BrowserContext;
  let page: Page;
  let profile = '';

  async function post(address: string, path: string, body?: string): Promise<void> {
    const res = await fetch(`http://${address}${path}`, { method: 'POST', body });
    if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  }

  async function nsqdTopic(n: TestNsqd, topic: string) {
    const res = await fetch(`http://${n.httpAddress}/stats?format=json&topic=${topic}`);
    return ((await res.json()) as TopicStats).topics?.find((t) => t.topic_name === topic);
  }

  async function channelDepth(n: TestNsqd, topic: string, channel: string): Promise<number | undefined> {
    return (await nsqdTopic(n, topic))?.channels.find((c) => c.channel_name === channel)?.depth;
  }

  /** A gauge or counter of nsqadmin's /metrics (0 when the series does not exist yet). */
  async function metric(a: Admin, series: string): Promise<number> {
    const text = await (await fetch(`${a.url}metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  }

  async function apiTopic(a: Admin, name: string): Promise<{ topic?: TopicSummary; ratesAt: number | null }> {
    const body = (await (await fetch(`${a.url}api/topics`)).json()) as {
      topics: TopicSummary[];
      ratesAt: number | null;
    };
    return { topic: body.topics.find((t) => t.name === name), ratesAt: body.ratesAt };
  }

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function confirm(): Promise<void> {
    const dialog = page.locator('dialog#confirm');
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
  }

  async function confirmClick(button: string): Promise<void> {
    await page.getByRole('button', { name: button, exact: true }).click();
    await confirm();
  }

  const heading = () => page.locator('h1').textContent();

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    lookupd = await startLookupd();
    nsqds = [
      await startNsqd({ lookupdTcpAddresses: [lookupd.tcpAddress], broadcastAddress: '127.0.0.1' }),
      await startNsqd({ lookupdTcpAddresses: [lookupd.tcpAddress], broadcastAddress: '127.0.0.1' }),
    ];
    for (const n of nsqds) {
      await post(n.httpAddress, '/topic/create?topic=orders');
      await post(n.httpAddress, '/channel/create?topic=orders&channel=billing');
      await post(n.httpAddress, '/channel/create?topic=orders&channel=audit');
      await post(n.httpAddress, '/mpub?topic=orders', 'a\nb\nc');
    }
    await post(nsqds[0].httpAddress, '/pub?topic=clicks', 'x');
    await eventually(async () => {
      const res = await fetch(`http://${lookupd.httpAddress}/lookup?topic=orders`);
      expect(((await res.json()) as { producers: unknown[] }).producers).toHaveLength(2);
    });
    admin = createAdmin({
      httpAddress: '127.0.0.1:0',
      lookupdHttpAddresses: [lookupd.httpAddress],
      sampleIntervalMs: SAMPLE_INTERVAL_MS,
      logLevel: 'fatal',
    });
    await admin.start();
    evil = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(EVIL_PAGE));
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    evilUrl = `http://127.0.0.1:${(evil.address() as { port: number }).port}/`;
    profile = await mkdtemp(join(tmpdir(), 'nsqadmin-chromium-'));
    context = await launchChromium(profile);
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await consumer?.close();
    await admin?.close();
    for (const n of nsqds) await n.close();
    await lookupd?.close();
    if (evil !== undefined) await new Promise<void>((r) => evil.close(() => r()));
    if (profile !== '') await rm(profile, { recursive: true, force: true });
  });

  it("shows a paused channel's backlog on the Topics list", async () => {
    for (const n of nsqds) {
      await post(n.httpAddress, '/channel/empty?topic=orders&channel=audit');
      await post(n.httpAddress, '/channel/pause?topic=orders&channel=billing');
    }
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${admin.url}#/topics`);
    await expect.poll(() => page.locator('#live').textContent()).toMatch(/^live/);
    await page.getByRole('link', { name: 'orders', exact: true }).waitFor();
    expect(await page.getByTestId('topic-messages-orders').textContent()).toBe('6');
    // The topic's own depth is 0 (it has channels); the backlog is billing's, and billing is paused.
    await expect.poll(() => page.getByTestId('topic-depth-orders').textContent()).toBe('6');
    await expect.poll(() => page.getByTestId('topic-deepest-orders').textContent()).toBe('billing: 6 paused');
    await page.getByText('1 paused').waitFor();
    for (const n of nsqds) await page.getByText(`${n.httpAddress}: 3 deep, 3 msgs`).first().waitFor();
    await shot('admin-topics');
    expect(errors).toEqual([]); // also: no favicon 404
  });

  it('shows the node page, linked from the Topics list', async () => {
    const node = nsqds[0].httpAddress;
    consumer = new Consumer({
      topic: 'orders',
      channel: 'audit',
      nsqdAddresses: [nsqds[0].tcpAddress],
      clientId: 'browser-test-consumer',
      handler: () => undefined,
    });
    await consumer.connect();
    await page.getByRole('link', { name: node, exact: true }).first().click();
    await expect.poll(heading).toMatch(new RegExp(`^Node ${node.replace(/\./g, '\\.')}\\b`));
    expect(await page.getByTestId('node-version').textContent()).toBe('1.3.0');
    expect(await page.getByTestId('node-health').textContent()).toBe('OK');
    expect(await page.getByTestId('node-started').textContent()).toMatch(/\(up \d+ s\)$/);
    expect(await page.getByTestId('node-tcp').textContent()).toBe(nsqds[0].tcpAddress);
    await page.getByRole('row').filter({ hasText: 'billing' }).getByText('paused', { exact: true }).waitFor();
    await page.getByRole('cell', { name: 'browser-test-consumer', exact: true }).waitFor();
    await expect.poll(() => page.getByTestId('node-clients').textContent()).toBe('1');
    await page.getByRole('link', { name: 'audit', exact: true }).first().waitFor();
    await shot('admin-node');
  });

  it('empties a channel on one node only', async () => {
    await page.goto(`${admin.url}#/topics/orders/billing`);
    await expect.poll(heading).toBe('Channel orders / billing paused');
    const [n1, n2] = nsqds;
    await expect.poll(() => page.getByTestId(`node-depth-${n1.httpAddress}`).textContent()).toBe('3');
    await page.getByRole('row').filter({ hasText: n1.httpAddress }).getByRole('button', { name: 'Empty' }).click();
    await expect
      .poll(() => page.locator('#confirm-text').textContent())
      .toBe(`Really empty channel orders/billing on ${n1.httpAddress} only?`);
    await confirm();
    await expect.poll(() => page.getByTestId(`node-depth-${n1.httpAddress}`).textContent()).toBe('0');
    expect(await channelDepth(n1, 'orders', 'billing')).toBe(0);
    expect(await channelDepth(n2, 'orders', 'billing')).toBe(3);
    expect(await page.getByTestId(`node-depth-${n2.httpAddress}`).textContent()).toBe('3');
    await shot('admin-channel');
  });

  it('shows rates falling to 0 after traffic stops, sampled while no browser was connected', async () => {
    await page.goto('about:blank');
    await expect.poll(() => metric(admin, 'nsqadmin_websocket_clients')).toBe(0);
    const publishes: Promise<unknown>[] = [];
    const timer = setInterval(() => publishes.push(post(nsqds[1].httpAddress, '/mpub?topic=clicks', 'x\ny\nz')), 20);
    try {
      await expect.poll(async () => (await apiTopic(admin, 'clicks')).topic?.ingressRate ?? 0).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
    }
    await Promise.allSettled(publishes); // the last message is in before the clock starts
    const stopped = Date.now();
    await expect
      .poll(async () => {
        const { topic, ratesAt } = await apiTopic(admin, 'clicks');
        return topic?.ingressRate === 0 && ratesAt !== null && ratesAt > stopped + SAMPLE_INTERVAL_MS;
      })
      .toBe(true);
    expect(await metric(admin, 'nsqadmin_websocket_clients')).toBe(0);

    // A page opened now: 0/s in the list, and the server's history (the burst, then 0) in the chart.
    await page.goto(`${admin.url}#/topics`);
    await expect.poll(() => page.getByTestId('topic-rate-clicks').textContent()).toBe('0/s');
    await page.getByRole('link', { name: 'clicks', exact: true }).click();
    const caption = page.getByTestId('topic-chart-caption');
    await expect.poll(() => caption.textContent()).toMatch(/^published 0\/s now, peak [\d.,]+\/s · last 5 min$/);
    expect(await caption.textContent()).not.toContain('peak 0/s');
    expect(await page.getByTestId('topic-rate').textContent()).toBe('0/s');
    await shot('admin-topic');
  });

  it('counts a known number of messages on the counter page', async () => {
    await post(nsqds[0].httpAddress, '/topic/create?topic=counted');
    await post(nsqds[0].httpAddress, '/channel/create?topic=counted&channel=one');
    await page.getByRole('link', { name: 'Counter' }).click();
    const total = page.getByTestId('counter-total');
    const count = async () => Number((await total.textContent())?.replace(/,/g, ''));
    // The page shows what the cluster holds before the test publishes.
    const before = ((await (await fetch(`${admin.url}api/counter`)).json()) as { total_messages: number })
      .total_messages;
    await expect.poll(count).toBe(before);
    const body = Array.from({ length: 37 }, (_, i) => `m${i}`).join('\n');
    await post(nsqds[0].httpAddress, '/mpub?topic=counted', body);
    await expect.poll(count).toBe(before + 37);
    await shot('admin-counter');
  });

  it('deletes a topic only nsqlookupd still lists, from the lookup page', async () => {
    await post(lookupd.httpAddress, '/topic/create?topic=ghost');
    await page.getByRole('link', { name: 'Lookup' }).click();
    const row = page
      .getByRole('row')
      .filter({ hasText: 'ghost' })
      .filter({ has: page.getByRole('button') });
    await row.waitFor();
    await page.getByRole('cell', { name: lookupd.httpAddress }).first().waitFor();
    await shot('admin-lookup');
    await row.getByRole('button', { name: 'Delete' }).click();
    await confirm();
    await expect
      .poll(
        async () =>
          ((await (await fetch(`http://${lookupd.httpAddress}/topics`)).json()) as { topics: string[] }).topics,
      )
      .not.toContain('ghost');
  });

  /** Opens the attacker's page aimed at `a`, waits for its attempts, and checks they were refused. */
  async function forge(a: Admin, topic: string): Promise<void> {
    const series = 'nsqadmin_refused_requests_total{reason="CROSS_ORIGIN_REQUEST_REFUSED"}';
    const refusedBefore = await metric(a, series);
    const pausedBefore = await Promise.all(nsqds.map(async (n) => (await nsqdTopic(n, topic))?.paused));
    const attacker = await context.newPage();
    try {
      await attacker.goto(`${evilUrl}?target=${encodeURIComponent(a.url)}&topic=${topic}`);
      // The preflighted DELETE is blocked by the browser (no CORS grant); the others reach the server.
      await expect.poll(() => attacker.title()).toBe('done fulfilled,fulfilled,rejected,fulfilled');
    } finally {
      await attacker.close();
    }
    expect(await metric(a, series)).toBe(refusedBefore + 3);
    // Still there, and not paused either.
    expect(await Promise.all(nsqds.map(async (n) => (await nsqdTopic(n, topic))?.paused))).toEqual(pausedBefore);
    expect(pausedBefore.every((p) => p !== undefined)).toBe(true);
  }

  it("refuses a cross-origin page's delete while the same action from the UI works", async () => {
    for (const n of nsqds) await post(n.httpAddress, '/topic/create?topic=victim');
    await forge(admin, 'victim');
    await page.goto(`${admin.url}#/topics/victim`);
    await expect.poll(heading).toBe('Topic victim');
    await confirmClick('Delete topic');
    await expect.poll(heading).toBe('Topics');
    for (const n of nsqds) expect(await nsqdTopic(n, 'victim')).toBeUndefined();
  });

  it('refuses it with the login cookie too (--admin-password-file)', async () => {
    const guarded = createAdmin({
      httpAddress: '127.0.0.1:0',
      lookupdHttpAddresses: [lookupd.httpAddress],
      sampleIntervalMs: SAMPLE_INTERVAL_MS,
      adminPassword: 'letmein',
      logLevel: 'fatal',
    });
    await guarded.start();
    try {
      for (const n of nsqds) await post(n.httpAddress, '/topic/create?topic=vault');
      await page.goto(`${guarded.url}#/topics/vault`);
      await expect.poll(heading).toBe('Topic vault');
      // The first action asks for the password and logs in: the session cookie is set.
      page.once('dialog', (d) => void d.accept('letmein'));
      await confirmClick('Pause topic');
      await page.getByRole('button', { name: 'Unpause topic' }).waitFor();
      expect((await context.cookies(guarded.url)).map((c) => c.name)).toContain('nsqadmin_session');

      await confirmClick('Unpause topic');
      await page.getByRole('button', { name: 'Pause topic', exact: true }).waitFor();
      await forge(guarded, 'vault');
      await confirmClick('Delete topic');
      await expect.poll(heading).toBe('Topics');
      for (const n of nsqds) expect(await nsqdTopic(n, 'vault')).toBeUndefined();
    } finally {
      await guarded.close();
    }
  });

  it('updates the topic page live while messages are published', { timeout: 60_000 }, async () => {
    await page.goto(`${admin.url}#/topics/orders`);
    await expect.poll(heading).toBe('Topic orders');
    const counter = page.getByTestId('topic-messages');
    const start = Number((await counter.textContent())?.replace(/,/g, ''));
    const timer = setInterval(() => {
      void post(nsqds[0].httpAddress, '/mpub?topic=orders', 'm\nm\nm').catch(() => undefined);
    }, 50);
    try {
      await expect
        .poll(async () => Number((await counter.textContent())?.replace(/,/g, '')), { timeout: 10_000 })
        .toBeGreaterThan(start + 30);
      await expect.poll(async () => (await page.getByTestId('topic-rate').textContent()) !== '0/s').toBe(true);
      await page.getByRole('button', { name: '1 h' }).click();
      await expect.poll(() => page.getByTestId('topic-chart-caption').textContent()).toMatch(/last 60 min$/);
    } finally {
      clearInterval(timer);
    }
  });

  it('pauses, empties and deletes a channel through the UI', async () => {
    await page.getByRole('link', { name: 'billing', exact: true }).click();
    await expect.poll(heading).toBe('Channel orders / billing paused');
    await confirmClick('Unpause channel');
    await page.getByRole('button', { name: 'Pause channel', exact: true }).waitFor();
    for (const n of nsqds) {
      expect((await nsqdTopic(n, 'orders'))?.channels.find((c) => c.channel_name === 'billing')?.paused).toBe(false);
    }
    await confirmClick('Pause channel');
    await page.getByRole('button', { name: 'Unpause channel' }).waitFor();

    await confirmClick('Empty channel');
    await expect.poll(() => page.getByTestId('channel-depth').textContent()).toBe('0');
    for (const n of nsqds) expect(await channelDepth(n, 'orders', 'billing')).toBe(0);

    // Cancel leaves it alone; keyboard: Escape closes the dialog.
    await page.getByRole('button', { name: 'Delete channel' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('dialog#confirm').isVisible()).toBe(true);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('dialog#confirm').isVisible()).toBe(false);
    expect((await nsqdTopic(nsqds[0], 'orders'))?.channels.map((c) => c.channel_name)).toContain('billing');

    await confirmClick('Delete channel');
    await expect.poll(heading).toMatch(/^Topic orders/);
    for (const n of nsqds) {
      expect((await nsqdTopic(n, 'orders'))?.channels.map((c) => c.channel_name)).toEqual(['audit']);
    }
  });

  it('pauses and deletes a topic through the UI', async () => {
    await confirmClick('Pause topic');
    await page.getByRole('button', { name: 'Unpause topic' }).waitFor();
    for (const n of nsqds) expect((await nsqdTopic(n, 'orders'))?.paused).toBe(true);
    await page.getByRole('navigation').getByRole('link', { name: 'Topics' }).click();
    await page
      .getByRole('row')
      .filter({ hasText: 'orders' })
      .first()
      .getByText('paused', { exact: true })
      .first()
      .waitFor();
    await page.getByRole('link', { name: 'orders', exact: true }).click();
    await confirmClick('Delete topic');
    await expect.poll(heading).toBe('Topics');
    for (const n of nsqds) expect(await nsqdTopic(n, 'orders')).toBeUndefined();
    await expect.poll(() => page.getByRole('link', { name: 'orders', exact: true }).count()).toBe(0);
  });

  it('shows the nodes page with every nsqd and nsqlookupd', async () => {
    await page.getByRole('link', { name: 'Nodes' }).click();
    await expect.poll(heading).toBe('Nodes');
    for (const n of nsqds) await page.getByRole('link', { name: n.httpAddress, exact: true }).waitFor();
    expect(await page.getByRole('cell', { name: '1.3.0' }).count()).toBe(3); // two nsqds, one lookupd
    await page.getByRole('cell', { name: lookupd.httpAddress }).waitFor();
    await shot('admin-nodes');
  });

  it('creates a topic and a channel from the lookup page', async () => {
    await page.getByRole('link', { name: 'Lookup' }).click();
    await page.getByRole('link', { name: 'clicks', exact: true }).waitFor();
    await page.getByLabel('Topic', { exact: true }).first().fill('signups');
    await page.getByRole('button', { name: 'Create topic' }).click();
    await page.getByRole('link', { name: 'signups', exact: true }).first().waitFor();
    const form = page.locator('#create-channel');
    await form.getByLabel('Topic').fill('signups');
    await form.getByLabel('Channel').fill('mailer');
    await form.getByRole('button', { name: 'Create channel' }).click();
    await page.getByRole('link', { name: 'mailer', exact: true }).first().waitFor();
  });
});
