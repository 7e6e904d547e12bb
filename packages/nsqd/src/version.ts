/** The NSQ protocol level spoken, reported on the wire, in /info, /stats and --version. */
export const VERSION = '1.3.0';
