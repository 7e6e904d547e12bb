import { randomBytes } from 'node:crypto';

/** How long a login (--admin-password-file) lasts. */
export const SESSION_TTL_MS = 12 * 3600_000;

/** Login sessions: random ids (the cookie's value) and their expiry. */
export class Sessions {
  private readonly expiries = new Map<string, number>();

  /** A new session id; expired sessions are dropped here, so the map stays as small as the live logins. */
  open(now = Date.now()): string {
    for (const [id, expires] of this.expiries) if (expires <= now) this.expiries.delete(id);
    const id = randomBytes(32).toString('base64url');
    this.expiries.set(id, now + SESSION_TTL_MS);
    return id;
  }

  isLive(id: string, now = Date.now()): boolean {
    const expires = this.expiries.get(id);
    if (expires === undefined) return false;
    if (expires > now) return true;
    this.expiries.delete(id);
    return false;
  }

  end(id: string): void {
    this.expiries.delete(id);
  }
}
