/**
 * nsqadmin's delivery-policy pages in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), against a real nsqd: editing a channel's max attempts in the policy dialog,
 * a message that nsqd dead-letters showing in the Dead letters list, and a redrive confirmed in
 * the dialog (nsqd's own /topic/redrive) that puts the message back in the channel it left.
 * Skips only when /usr/bin/chromium is absent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Admin, createAdmin } from '@nsq-ts/admin';
import { Consumer } from '@nsq-ts/client';
import { startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, hasChromium, launchChromium } from './support/chromium.js';

const DEAD = 'orders.billing.dead';

interface ChannelJson {
  channel_name: string;
  depth: number;
  dead_lettered_count?: number;
}
interface TopicJson {
  topic_name: string;
  depth: number;
  message_count: number;
  channels: ChannelJson[];
}

describe.skipIf(!hasChromium)(`nsqadmin delivery policies in Chromium (skipped when ${CHROMIUM} is absent)`, () => {
  let nsqd: TestNsqd;
  let admin: Admin;
  let context: BrowserContext;
  let page: Page;
  let profile = '';
  const consumers: Consumer[] = [];

  const nsqdUrl = (path: string) => `http://${nsqd.httpAddress}${path}`;

  async function post(path: string, body?: string): Promise<void> {
    const res = await fetch(nsqdUrl(path), { method: 'POST', body });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  }

  async function topicStats(topic: string): Promise<TopicJson | undefined> {
    const res = await fetch(nsqdUrl(`/stats?format=json&topic=${encodeURIComponent(topic)}`));
    return ((await res.json()) as { topics: TopicJson[] | null }).topics?.find((t) => t.topic_name === topic);
  }

  const heading = () => page.locator('h1').textContent();

  async function confirm(text: string): Promise<void> {
    const dialog = page.locator('dialog#confirm');
    await expect.poll(() => dialog.isVisible()).toBe(true);
    expect(await page.locator('#confirm-text').textContent()).toBe(text);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
  }

  beforeAll(async () => {
    nsqd = await startNsqd({ broadcastAddress: '127.0.0.1' });
    await post('/topic/create?topic=orders');
    await post('/channel/create?topic=orders&channel=billing');
    admin = createAdmin({
      httpAddress: '127.0.0.1:0',
      nsqdHttpAddresses: [nsqd.httpAddress],
      sampleIntervalMs: 250,
      logLevel: 'fatal',
    });
    await admin.start();
    profile = await mkdtemp(join(tmpdir(), 'nsqadmin-policies-chromium-'));
    context = await launchChromium(profile, { width: 1280, height: 900 });
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    for (const c of consumers) await c.close();
    await admin?.close();
    await nsqd?.close();
    if (profile !== '') await rm(profile, { recursive: true, force: true });
  });

  it("edits a channel's max attempts and dead-letter topic in the policy dialog", async () => {
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${admin.url}#/topics/orders/billing`);
    await expect.poll(heading).toBe('Channel orders / billing');
    await expect.poll(() => page.getByTestId('channel-max-attempts').textContent()).toBe('unlimited');
    expect(await page.getByTestId('channel-dead-letter-topic').textContent()).toBe('none: dropped');

    await page.getByRole('button', { name: 'Edit channel policy' }).click();
    const dialog = page.locator('dialog#policy');
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await dialog.getByLabel('Max attempts').fill('2');
    await dialog.getByLabel('Dead-letter topic').fill(DEAD);
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);

    await expect.poll(() => page.getByTestId('channel-max-attempts').textContent()).toBe('2');
    expect(await page.getByTestId('channel-dead-letter-topic').textContent()).toBe(DEAD);
    expect(await page.locator('#notice').textContent()).toBe('Done: config channel orders/billing.');
    const res = await fetch(nsqdUrl('/channel/config?topic=orders&channel=billing'));
    expect(await res.json()).toEqual({ max_attempts: 2, dead_letter_topic: DEAD });

    // Cancel sends nothing.
    await page.getByRole('button', { name: 'Edit channel policy' }).click();
    await dialog.getByLabel('Max attempts').fill('7');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
    expect(await (await fetch(nsqdUrl('/channel/config?topic=orders&channel=billing'))).json()).toMatchObject({
      max_attempts: 2,
    });
    expect(errors).toEqual([]);
  });

  it('lists the dead-letter topic with the message the channel gave up', async () => {
    await page.getByRole('link', { name: 'Dead letters' }).click();
    await expect.poll(heading).toBe('Dead letters');
    // Named but empty until the first dead letter makes the topic.
    await page.getByText(`${DEAD} (no dead letter yet)`).waitFor();

    const consumer = new Consumer({
      topic: 'orders',
      channel: 'billing',
      nsqdAddresses: [nsqd.tcpAddress],
      handler: (m) => m.requeue(0, false),
    });
    consumers.push(consumer);
    await consumer.connect();
    await post('/pub?topic=orders', 'poison');
    await expect
      .poll(async () => (await topicStats('orders'))?.channels.find((c) => c.channel_name === 'billing'))
      .toMatchObject({ dead_lettered_count: 1 });
    await consumer.close();

    await expect.poll(() => page.getByTestId(`dead-letter-depth-${DEAD}`).textContent()).toBe('1');
    const row = page.getByRole('row').filter({ hasText: DEAD });
    await row.getByRole('link', { name: 'billing', exact: true }).waitFor();
    await row.getByRole('button', { name: 'Redrive into orders' }).waitFor();
  });

  it('redrives the dead letters back into their topic after confirmation', async () => {
    const before = (await topicStats('orders'))?.message_count ?? 0;
    const button = page.getByRole('row').filter({ hasText: DEAD }).getByRole('button', { name: 'Redrive into orders' });
    // Cancelled first: nothing moves.
    await button.click();
    await expect.poll(() => page.locator('dialog#confirm').isVisible()).toBe(true);
    await page.locator('dialog#confirm').getByRole('button', { name: 'Cancel' }).click();
    expect((await topicStats(DEAD))?.depth).toBe(1);

    await button.click();
    await confirm(`Really redrive topic ${DEAD} into orders (move every dead letter it holds, each once)?`);
    await expect
      .poll(() => page.locator('#notice').textContent())
      .toBe(`Done: redrive topic ${DEAD} into orders: 1 dead letter(s) moved.`);
    await expect.poll(() => page.getByTestId(`dead-letter-depth-${DEAD}`).textContent()).toBe('0');
    const orders = await topicStats('orders');
    expect(orders?.message_count).toBe(before + 1);
    expect(orders?.channels.find((c) => c.channel_name === 'billing')?.depth).toBe(1);

    // The same message, delivered to the channel's consumers again.
    const bodies: string[] = [];
    const consumer = new Consumer({
      topic: 'orders',
      channel: 'billing',
      nsqdAddresses: [nsqd.tcpAddress],
      handler: (m) => {
        bodies.push(m.body.toString());
      },
    });
    consumers.push(consumer);
    await consumer.connect();
    await expect.poll(() => bodies).toEqual(['poison']);
    await expect
      .poll(async () => (await topicStats('orders'))?.channels.find((c) => c.channel_name === 'billing'))
      .toMatchObject({ depth: 0, dead_lettered_count: 1 });
  });
});
