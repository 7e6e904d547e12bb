/** Topic and channel names (nsq-spec §2.12): 1..64 chars including an optional `#ephemeral`. */
const NAME_RE = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;
const EPHEMERAL_SUFFIX = '#ephemeral';
export const MAX_NAME_LENGTH = 64;

export function isValidName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** Topics and channels follow the same rule in nsqd, nsqlookupd and go-nsq. */
export const isValidTopicName = isValidName;
export const isValidChannelName = isValidName;

export function isEphemeralName(name: string): boolean {
  return name.endsWith(EPHEMERAL_SUFFIX);
}
