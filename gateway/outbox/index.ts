export * from './outbox.ts';
export { createSqliteOutbox, type SqliteOutboxOptions } from './sqlite-outbox.ts';
export { createMemoryOutbox, type MemoryOutboxOptions } from './memory-outbox.ts';
