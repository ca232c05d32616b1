export { ConfigSchema, SECRET_PATHS, SinkKind, Hl7ProfileName, type GatewayConfig } from './schema.ts';
export { loadConfig, validateConfig, formatConfigError, ConfigError, type ConfigProblem, type LoadOptions } from './load.ts';
export { renderConfigReference } from './reference.ts';
