// Owns the public face of src/config: what the rest of corelb imports. Pure: loading opens no
// socket, starts no timer and lays out no shared memory (algorithms' options are read through
// the balancer registry, which creates no balancer here).

export type { AdminConfig, Algorithm, BackendConfig, CertificateConfig, Config, ConfigProblem, HealthCheckConfig, ListenerConfig, ListenerTlsConfig, LoadResult, LogLevel, PassiveConfig, PoolConfig, RouteConfig, UpstreamTlsConfig } from './types.js';
export { ALGORITHMS } from '../balancer/registry.js';
export { loadConfigFile, parseConfig, type ParseOptions } from './load.js';
export { formatProblem } from './format.js';
export { checkCommand } from './check.js';
export { MASKED, printableConfig, printConfig } from './print.js';
export { formatDuration, parseDuration, parseSize } from './units.js';
export { normaliseBackendUrl, type BackendAddress } from './backend-url.js';
export { DEFAULTS, LOG_LEVELS, MAX_TIMEOUT_MS, MAX_WORKERS } from './schema.js';
export { MAX_WEIGHT } from './pools.js';
export { MAX_RETRIES, POOL_DEFAULTS } from './pool-settings.js';
export { deepFreeze } from './freeze.js';
