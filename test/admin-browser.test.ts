/**
 * nsqadmin in a real headless Chromium (Debian's `chromium`, driven by playwright-core): every
 * page against a running local cluster (in-process lookupd + two nsqds), a live counter changing
 * while messages are published, and pause / empty / delete performed by clicking and confirming.
 * Screenshots of each page go to test/artifacts/ (git-ignored). Skips only when /usr/bin/chromium
 * is absent (.ci/run installs it).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Admin, createAdmin } from '@nsq-ts/admin';
import { eventually, startLookupd, startNsqd, type TestLookupd, type TestNsqd } from '@nsq-ts/test-utils';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, 'test/artifacts');
const DOCS_SHOT = process.env.NSQADMIN_DOCS_SCREENSHOT === '1' ? join(ROOT, 'docs/admin-topic.png') : null;

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

describe.skipIf(!hasChromium)(`nsqadmin in Chromium (skipped when ${CHROMIUM} is absent)`, () => {
  let lookupd: TestLookupd;
  let nsqds: TestNsqd[] = [];
  let admin: Admin;
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

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function confirmClick(button: string): Promise<void> {
    await page.getByRole('button', { name: button, exact: true }).click();
    const dialog = page.locator('dialog#confirm');
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
  }

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
      pollIntervalMs: 500,
      logLevel: 'fatal',
    });
    await admin.start();
    profile = await mkdtemp(join(tmpdir(), 'nsqadmin-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    // Nothing but the local admin server: any other request is refused.
    await context.route(
      (url) => url.hostname !== '127.0.0.1',
      (route) => route.abort(),
    );
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await admin?.close();
    for (const n of nsqds) await n.close();
    await lookupd?.close();
    if (profile !== '') await rm(profile, { recursive: true, force: true });
  });

  it('shows the topics page with per-node breakdown', async () => {
    await page.goto(`${admin.url}#/topics`);
    await expect.poll(() => page.locator('#live').textContent()).toBe('live');
    await page.getByRole('link', { name: 'orders', exact: true }).waitFor();
    expect(await page.getByTestId('topic-messages-orders').textContent()).toBe('6');
    for (const n of nsqds) await page.getByText(`${n.httpAddress}: 0 deep, 3 msgs`).first().waitFor();
    await shot('admin-topics');
  });

  it('updates the topic page live while messages are published', { timeout: 60_000 }, async () => {
    await page.getByRole('link', { name: 'orders', exact: true }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Topic orders');
    const counter = page.getByTestId('topic-messages');
    expect(await counter.textContent()).toBe('6');
    // A varying rate, so the charts have a shape: batches of 1..10 messages every 50 ms.
    let tick = 0;
    const timer = setInterval(() => {
      const n = 1 + Math.round(4.5 + 4.5 * Math.sin(tick++ / 25));
      const body = Array.from({ length: n }, () => 'm').join('\n');
      void post(nsqds[tick % 2].httpAddress, '/mpub?topic=orders', body).catch(() => undefined);
    }, 50);
    try {
      await expect
        .poll(async () => Number((await counter.textContent())?.replace(/,/g, '')), { timeout: 10_000 })
        .toBeGreaterThan(50);
      await expect.poll(async () => (await page.getByTestId('topic-rate').textContent()) !== '0.0/s').toBe(true);
      await new Promise((r) => setTimeout(r, DOCS_SHOT === null ? 2500 : 15_000)); // points on the charts
    } finally {
      clearInterval(timer);
    }
    await shot('admin-topic');
    if (DOCS_SHOT !== null) {
      await page.setViewportSize({ width: 1100, height: 640 });
      await page.screenshot({ path: DOCS_SHOT });
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  it('pauses, empties and deletes a channel through the UI', async () => {
    await page.getByRole('link', { name: 'billing', exact: true }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Channel orders / billing');
    await shot('admin-channel');

    await confirmClick('Pause channel');
    await page.getByRole('button', { name: 'Unpause channel' }).waitFor();
    for (const n of nsqds) {
      expect((await nsqdTopic(n, 'orders'))?.channels.find((c) => c.channel_name === 'billing')?.paused).toBe(true);
    }

    await confirmClick('Empty channel');
    await expect.poll(() => page.getByTestId('channel-depth').textContent()).toBe('0');
    for (const n of nsqds) {
      expect((await nsqdTopic(n, 'orders'))?.channels.find((c) => c.channel_name === 'billing')?.depth).toBe(0);
    }

    // Cancel leaves it alone; keyboard: Escape closes the dialog.
    await page.getByRole('button', { name: 'Delete channel' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('dialog#confirm').isVisible()).toBe(true);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('dialog#confirm').isVisible()).toBe(false);
    expect((await nsqdTopic(nsqds[0], 'orders'))?.channels.map((c) => c.channel_name)).toContain('billing');

    await confirmClick('Delete channel');
    await expect.poll(() => page.locator('h1').textContent()).toMatch(/^Topic orders/);
    for (const n of nsqds) {
      expect((await nsqdTopic(n, 'orders'))?.channels.map((c) => c.channel_name)).toEqual(['audit']);
    }
  });

  it('pauses and deletes a topic through the UI', async () => {
    await confirmClick('Pause topic');
    await page.getByRole('button', { name: 'Unpause topic' }).waitFor();
    for (const n of nsqds) expect((await nsqdTopic(n, 'orders'))?.paused).toBe(true);
    await confirmClick('Delete topic');
    await expect.poll(() => page.locator('h1').textContent()).toBe('Topics');
    for (const n of nsqds) expect(await nsqdTopic(n, 'orders')).toBeUndefined();
    await expect.poll(() => page.getByRole('link', { name: 'orders', exact: true }).count()).toBe(0);
  });

  it('shows the nodes page', async () => {
    await page.getByRole('link', { name: 'Nodes' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Nodes');
    for (const n of nsqds) await page.getByRole('cell', { name: n.httpAddress, exact: true }).waitFor();
    expect(await page.getByRole('cell', { name: '1.3.0' }).count()).toBe(2);
    await shot('admin-nodes');
  });

  it('shows the lookup page and creates a topic and a channel', async () => {
    await page.getByRole('link', { name: 'Lookup' }).click();
    await page.getByRole('link', { name: 'clicks', exact: true }).waitFor();
    await page.getByLabel('Topic', { exact: true }).first().fill('signups');
    await page.getByRole('button', { name: 'Create topic' }).click();
    await page.getByRole('link', { name: 'signups', exact: true }).waitFor();
    const form = page.locator('#create-channel');
    await form.getByLabel('Topic').fill('signups');
    await form.getByLabel('Channel').fill('mailer');
    await form.getByRole('button', { name: 'Create channel' }).click();
    await page.getByRole('link', { name: 'mailer', exact: true }).waitFor();
    await shot('admin-lookup');
  });
});
