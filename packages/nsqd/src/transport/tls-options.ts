import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureVersion } from 'node:tls';
import type { NsqdOptions } from '../options.js';

/** nsqd's TLS settings resolved once at start-up (nsq-spec §5.11). */
export interface TlsSettings {
  context: SecureContext;
  /** Key, cert and CA for the HTTPS listener (node's https wants them, not a context). */
  serverOptions: {
    key: Buffer;
    cert: Buffer;
    ca?: Buffer;
    minVersion: SecureVersion;
    requestCert: boolean;
    rejectUnauthorized: boolean;
  };
  /** `require`: a client certificate must be presented, verified or not. */
  requireCert: boolean;
}

const MIN_VERSIONS: Readonly<Record<string, SecureVersion>> = {
  'tls1.0': 'TLSv1',
  'tls1.1': 'TLSv1.1',
  'tls1.2': 'TLSv1.2',
  'tls1.3': 'TLSv1.3',
};

/** null without --tls-cert/--tls-key; reads the files (start-up only). */
export function loadTlsSettings(o: NsqdOptions): TlsSettings | null {
  if (o.tlsCert === '' || o.tlsKey === '') return null;
  const key = readFileSync(o.tlsKey);
  const cert = readFileSync(o.tlsCert);
  const ca = o.tlsRootCaFile === '' ? undefined : readFileSync(o.tlsRootCaFile);
  const verify = o.tlsClientAuthPolicy === 'require-verify';
  const requireCert = o.tlsClientAuthPolicy === 'require' || verify;
  const serverOptions = {
    key,
    cert,
    ...(ca === undefined ? {} : { ca }),
    minVersion: MIN_VERSIONS[o.tlsMinVersion] ?? 'TLSv1',
    requestCert: requireCert,
    rejectUnauthorized: verify,
  };
  return { context: createSecureContext(serverOptions), serverOptions, requireCert };
}

/** Go's names for /stats `tls_version`. */
export function goTlsVersion(protocol: string | null): string {
  switch (protocol) {
    case 'TLSv1':
      return 'TLS1.0';
    case 'TLSv1.1':
      return 'TLS1.1';
    case 'TLSv1.2':
      return 'TLS1.2';
    case 'TLSv1.3':
      return 'TLS1.3';
    default:
      return protocol ?? '';
  }
}
