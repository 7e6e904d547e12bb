import { lookupProducers as lookupAll, NsqHttpClient, NsqHttpError } from '@nsq-ts/http-client';

/** The message is `GET <url>: <reason>`. */
export { NsqHttpError as LookupError };

/** TOPIC_NOT_FOUND is an empty list; bare JSON and the pre-1.0 `{"data": …}` envelope are both read. */
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
