// Owns how a normalised Config is shown to people (`corelb check --print`, the admin's GET
// /config): plain JSON of the validated values (durations in ms, sizes in bytes), with secrets
// masked so that the output can be pasted into a ticket.

import type { Config } from './types.js';

/** What a secret is shown as: that it is set, never its value. */
export const MASKED = '(set, not shown)';

/** `config` as a plain object with the admin token (the only secret a config holds) masked. */
export function printableConfig(config: Config): unknown {
  return { ...config, admin: config.admin === null ? null : { ...config.admin, token: config.admin.token === null ? null : MASKED } };
}

/** Two-space indented JSON and a newline. */
export function printConfig(config: Config): string {
  return JSON.stringify(printableConfig(config), null, 2) + '\n';
}
