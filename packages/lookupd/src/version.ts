/** The NSQ release whose protocol nsqlookupd speaks: reported in IDENTIFY, /info and --version. */
export const VERSION = '1.3.0';

/** `nsqlookupd --version`: `nsqlookupd v1.3.0 (built w/node20.20.2)`, NSQ's format with node for go. */
export function lookupdVersionLine(): string {
  return `nsqlookupd v${VERSION} (built w/node${process.versions.node})`;
}
