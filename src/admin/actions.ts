// Owns what the admin server needs of the running proxy, and nothing more: the configuration in
// effect, the counters, readiness, and the operator's actions (drain, enable, weight, reload).
// The primary's control plane implements it; admin/ imports nothing from primary/.

import type { CacheFigures } from './cache.js';
import type { Config } from '../config/types.js';
import type { Snapshot } from './counters.js';

export type ReloadResult =
  | { readonly ok: true; readonly generation: number; readonly workers: number }
  | { readonly ok: false; readonly problems: readonly string[] };

export type WeightResult =
  | { readonly ok: true; readonly generation: number; readonly changed: readonly { readonly pool: string; readonly from: number; readonly to: number }[] }
  | { readonly ok: false; readonly error: string };

export interface AdminActions {
  /** The configuration in effect (weight overrides applied). */
  readonly config: Config;
  /** The counters, added up across workers and generations. */
  snapshot(): Snapshot;
  /** Every worker is serving (not starting, stopping, or dead). */
  readonly serving: boolean;
  /** Pool `k` of the configuration in effect has a backend it may pick now. */
  poolHasAvailable(k: number): boolean;
  /** Drain (`on`) or enable backend `url` in `pool` (null: every pool that has it); returns how many. */
  setDraining(url: string, on: boolean, pool: string | null): number;
  /**
   * Publish the running config with backend `url`'s weight set to `weight`, in `pool` or (null)
   * in every pool that has it: a new generation, so balancers rebuild their schedules. A reload
   * from the file drops the override.
   */
  setWeight(pool: string | null, url: string, weight: number): Promise<WeightResult>;
  /** Re-read the config file and apply it, or keep the running one and report why not. */
  reload(): Promise<ReloadResult>;
  /** The shared response cache's figures, or null when there is no cache. */
  cacheFigures(): CacheFigures | null;
  /** Remove the cached answers for `target` (every host and variant; `prefix`: every target that
   * starts with it); how many, or null when there is no cache. */
  purgeCache(target: string, prefix: boolean): number | null;
}
