export {
  ConfigSchema,
  SECRET_PATHS,
  SinkKind,
  Hl7ProfileName,
  CONFIG_VERSION,
  type GatewayConfig,
  type FieldMeta,
  type DatabaseConfig,
  type SqlStreamConfig,
  type WriteBackConfig,
  type RecordMappingConfig,
  type FilesConfig,
  type FileKindConfig,
  type SftpConfig,
  type FtpsConfig,
  type FileOutputConfig,
  type Hl7Config,
  type MqttConfig,
  type HttpsConfig,
  type OutboundConfig,
  type FileProfileName,
} from './schema.ts';
export {
  loadConfig,
  loadConfigReport,
  validateConfig,
  formatConfigError,
  ConfigError,
  type ConfigProblem,
  type ConfigReport,
  type LoadOptions,
} from './load.ts';
export { checkRules, isReference, type RuleOptions } from './rules.ts';
export { applyEnvOverrides, envNameOf, envSegmentOf, ENV_PREFIX } from './env-overrides.ts';
export {
  MIGRATIONS,
  migrateConfigFile,
  migrateDocument,
  migrateValue,
  ConfigVersionError,
  type Migration,
  type MigrationResult,
  type FileMigration,
} from './migrate.ts';
export { planReload, prepareReload, type ReloadChange, type ReloadPlan } from './reload-plan.ts';
export { walkSchema, secretPaths, schemaPathOf, type SchemaField } from './schema-walk.ts';
export { renderConfigReference } from './reference.ts';
