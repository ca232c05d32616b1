/**
 * The release trust a packaged executable carries from its build (`npm run build:binary --
 * --release-keys FILE --manifest-url URL`): the cloud's release public keys and where its manifest
 * is. A gateway installed by setup and enrolment then accepts signed updates with nothing written
 * in its config; the config's `cloud.releaseKeys` and `updates.manifestUrl`, when set, take their
 * place (a practice pinned to another release channel, the tests).
 */
import type { GatewayConfig } from '../config/schema.ts';

declare const __RELEASE_KEYS__: string[] | undefined;
declare const __UPDATE_MANIFEST_URL__: string | undefined;

/** The release keys built into this executable (none when run from the sources or built without them). */
export function builtInReleaseKeys(): readonly string[] {
  return typeof __RELEASE_KEYS__ !== 'undefined' ? __RELEASE_KEYS__ : [];
}

export function builtInManifestUrl(): string | undefined {
  return typeof __UPDATE_MANIFEST_URL__ !== 'undefined' && __UPDATE_MANIFEST_URL__ !== '' ? __UPDATE_MANIFEST_URL__ : undefined;
}

/** The release keys in effect: the config's, else the built-in ones; and where they came from. */
export function releaseKeysOf(config: GatewayConfig): { keys: readonly string[]; from: 'config' | 'build' | 'none' } {
  if (config.cloud.releaseKeys.length > 0) return { keys: config.cloud.releaseKeys, from: 'config' };
  const built = builtInReleaseKeys();
  return { keys: built, from: built.length > 0 ? 'build' : 'none' };
}

export function manifestUrlOf(config: GatewayConfig): string | undefined {
  return config.updates.manifestUrl ?? builtInManifestUrl();
}
