/** The NSQ release whose nsqadmin this one stands in for. */
export const VERSION = '1.3.0';

/** `nsqadmin v1.3.0 (built w/node20.20.2)`, NSQ's format with node for go. */
export function adminVersionLine(): string {
  return `nsqadmin v${VERSION} (built w/node${process.versions.node})`;
}
