import { lookupProducers as lookupAll, NsqHttpClient, NsqHttpError } from '@nsq-ts/http-client';

/**
 * A failed lookupd query: unreachable, too slow, or a reply that is neither a producer list nor
 * TOPIC_NOT_FOUND. The shared NSQ HTTP error: the message is `GET <url>: <reason>`.
 */
export { NsqHttpError as LookupError };

/**
 * Asks one nsqlookupd which nsqd nodes carry `topic` (`GET /lookup?topic=`, nsq-spec §4.2) and
 * returns their TCP addresses (`broadcast_address:tcp_port`). A topic the lookupd does not know
 * (TOPIC_NOT_FOUND) has no producer yet: an empty list. Bare JSON and the pre-1.0 `{"data": …}`
 * envelope are both read. A non-empty `authToken` goes as `Authorization: Bearer` (nsq-ts
 * lookupd's --http-auth-token).
 */
export async function lookupProducers(
  address: string,
  topic: string,
  timeoutMs: number,
  authToken = '',
): Promise<string[]> {
  const { producers, errors } = await lookupAll(new NsqHttpClient({ timeoutMs, authToken }), [address], topic);
  if (errors[0] !== undefined) throw errors[0];
  return producers.map((p) => p.tcpAddress);
}
