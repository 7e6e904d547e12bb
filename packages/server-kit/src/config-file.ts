import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FlagError, FlagErrorCode } from '@nsq-ts/go-compat';

/** The TOML parser, loaded only when a daemon is given --config (its start-up without one skips it). */
function parseToml(text: string): ConfigTable {
  const toml = createRequire(import.meta.url)('smol-toml') as typeof import('smol-toml');
  return toml.parse(text);
}

/** Keys are flag names with `_`. */
export type ConfigTable = Record<string, unknown>;

/** Reads a daemon's `--config` TOML file; an unreadable or invalid file is a FlagError (exit 1). */
export function loadConfigFile(path: string): ConfigTable {
  try {
    return parseToml(readFileSync(path, 'utf8'));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new FlagError(FlagErrorCode.InvalidConfig, `failed to load config file ${path} - ${reason}`, 'config', {
      cause: err,
    });
  }
}
