/**
 * What the source commands (`db`, `fhir`, `api`) share: the entries a `--source`/`--database`
 * argument picks from a config section (with what to do when there is none), and the secret store
 * a source's command opens as the gateway itself would (the seal key through its custody).
 */
import type { SecretStore } from '../adapters/contracts.ts';
import { gatewayPaths } from '../gateway/create-gateway.ts';
import { openSealKey } from '../gateway/crypto/key-custody.ts';
import { createRecordSealer } from '../gateway/crypto/record-sealer.ts';
import { createSecretStore } from '../gateway/crypto/secret-store.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { CliIo } from './command.ts';

/** The entries of `all` (one when `id` is given); undefined, with the reason on stderr, when none fit. */
export function pickEntries<T extends { id: string }>(
  all: readonly T[],
  id: string | undefined,
  what: { kind: string; section: string },
  io: CliIo,
): T[] | undefined {
  if (all.length === 0) {
    io.err(`no ${what.kind}s in the config (section \`${what.section}\`)`);
    return undefined;
  }
  if (!id) return [...all];
  const one = all.filter((e) => e.id === id);
  if (one.length === 0) {
    io.err(`no ${what.kind} "${id}" in the config; there is: ${all.map((e) => e.id).join(', ')}`);
    return undefined;
  }
  return one;
}

/** The source's secret store, as the gateway opens it (the seal key made on first use, never replaced). */
export function sourceSecretStore(config: GatewayConfig, id: string): SecretStore {
  const paths = gatewayPaths(config);
  const custody = openSealKey({
    keyFile: paths.keyFile,
    outboxFiles: [paths.outboxFile, paths.outboundFile],
    sealedFileDirs: [paths.fileSinkDir],
  });
  return createSecretStore(paths.dataDir, id, createRecordSealer(custody.key));
}
