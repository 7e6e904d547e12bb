import { readFileSync } from 'node:fs';
import { FlagError, FlagErrorCode } from '@nsq-ts/protocol';
import { parse as parseToml } from 'smol-toml';

/** A `--config` file's keys and values (TOML, keys are flag names with `_`). */
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
