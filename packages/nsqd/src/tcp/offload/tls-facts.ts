import type { TLSSocket } from 'node:tls';
import type { TlsSettings } from '../../transport/tls-options.js';

/** What a worker needs to build nsqd's secure context itself (a context cannot cross threads). */
export type WorkerTlsOptions = TlsSettings['serverOptions'] & { requireCert: boolean };

/** The peer certificate's common name ('' without one), as the auth server is told it. */
export function peerCommonName(tls: TLSSocket): string {
  const cn = tls.getPeerCertificate()?.subject?.CN ?? '';
  return Array.isArray(cn) ? (cn[0] ?? '') : cn;
}
