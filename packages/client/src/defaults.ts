import { hostname } from 'node:os';

/** `user_agent` sent in IDENTIFY unless overridden. */
export const USER_AGENT = 'nsq-ts/0.1.0';

/** Default `client_id`/`hostname` sent in IDENTIFY. */
export const HOSTNAME: string = hostname();
