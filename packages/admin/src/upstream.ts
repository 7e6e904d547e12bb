/**
 * HTTP calls to nsqlookupd and nsqd, as Go's nsqadmin makes them (nsq-spec §6), through the
 * client every nsq-ts package shares: NSQ's V1 Accept header, bare JSON or the pre-1.0 envelope,
 * any non-200 an error, one timeout per request.
 */
import { NsqHttpClient, NsqHttpError, nsqQuery } from '@nsq-ts/http-client';

/** A failed upstream call; `address` is the node it went to. */
/** `?a=1&b=2` from the defined entries. */
export { NsqHttpError as UpstreamError, nsqQuery as query };

export class Upstream extends NsqHttpClient {
  /** `authToken` goes as `Authorization: Bearer` (nsqd's and nsqlookupd's --http-auth-token); '' sends none. */
  constructor(timeoutMs: number, authToken = '') {
    super({ timeoutMs, authToken });
  }
}
