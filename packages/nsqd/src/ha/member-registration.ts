import type { Etcd3 } from 'etcd3';
import { encodeMember, type MemberRecord } from './keys.js';
import { isLeaseNotFound, LeaseKeeper } from './lease-keeper.js';
import { type HaSettings, leaseOptions, requestDeadline } from './settings.js';

export interface MemberRegistrationHooks {
  report(op: string, err: unknown): void;
  isClosed(): boolean;
  /** Whether the view of the group lists this member's key now. */
  isListed(): boolean;
}

/**
 * This member's `members/<id>` key, under a lease of its own kept alive for the process's life,
 * and put back (under a new lease if need be) whenever it disappears.
 */
export class MemberRegistration {
  private lease: LeaseKeeper | null = null;

  constructor(
    private readonly client: Etcd3,
    private readonly key: string,
    private readonly record: MemberRecord,
    private readonly settings: HaSettings,
    private readonly hooks: MemberRegistrationHooks,
  ) {}

  async register(): Promise<void> {
    const lease = new LeaseKeeper(this.client, leaseOptions(this.settings), {
      renewed: () => undefined,
      lost: () => this.reRegister(lease),
      failed: (error) => this.hooks.report('member-keepalive', error),
    });
    this.lease = lease;
    const id = await lease.grant();
    try {
      await this.client.kv.put(
        { key: Buffer.from(this.key), value: Buffer.from(encodeMember(this.record)), lease: id },
        requestDeadline(this.settings),
      );
    } catch (err) {
      lease.revoke().catch(() => undefined);
      throw err;
    }
    if (this.hooks.isClosed()) await lease.revoke();
  }

  /** Revokes the member lease (etcd deletes the key with it); null before the first registration. */
  revoke(): Promise<void> | null {
    return this.lease === null ? null : this.lease.revoke();
  }

  /** Our member key was deleted (by hand, or with our expired lease): put it back. */
  keyDeleted(): void {
    const lease = this.lease;
    if (this.hooks.isClosed() || lease === null || lease.id === null || this.hooks.isListed()) return;
    this.client.kv
      .put(
        { key: Buffer.from(this.key), value: Buffer.from(encodeMember(this.record)), lease: lease.id },
        requestDeadline(this.settings),
      )
      .catch((err) => {
        if (!isLeaseNotFound(err)) {
          this.hooks.report('register', err);
          return;
        }
        // The key went with our lease (it expired across a partition): a new lease, a new key.
        lease.stop();
        this.reRegister(lease);
      });
  }

  /** The member lease expired (e.g. a long partition): register again, retrying until it works. */
  private reRegister(lost: LeaseKeeper): void {
    if (this.hooks.isClosed() || this.lease !== lost) return;
    this.register().catch((err) => {
      this.hooks.report('register', err);
      setTimeout(() => this.reRegister(this.lease ?? lost), this.settings.campaignRetryMs);
    });
  }
}
