/**
 * The EHRs' public keys, fetched from their allow-listed `jku` URLs (jose `createRemoteJWKSet`):
 * one key set per URL, fetched on first use (and warmed at start, so the first request does not pay
 * for it), refetched when a token names a `kid` the set lacks (at most every 30 s: a key rotation),
 * and refreshed in the background every 10 minutes so a key the EHR withdrew stops verifying.
 *
 * A request never waits on a refresh of a set it already holds: a failed refresh keeps the keys it
 * had for up to {@link MAX_STALE_MS}, then the set counts as unavailable (requests get 503) until
 * the EHR answers again. Only URLs from the config are ever fetched — a token's `jku` is matched
 * against them before anything is fetched, never followed.
 */
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.ts';

export const REFRESH_MS = 10 * 60_000;
export const MAX_STALE_MS = 24 * 3600_000;
const FETCH_TIMEOUT_MS = 3000;

export interface KeySets {
  /** The key set of an allow-listed URL, or undefined when it has not been fetched for too long. */
  get(jku: string): JWTVerifyGetKey | undefined;
  /** Fetches every set once and starts the background refresh. */
  start(): void;
  stop(): void;
}

export function createKeySets(o: { urls: readonly string[]; clock: Clock; logger: Logger }): KeySets {
  const sets = new Map<string, { keys: ReturnType<typeof createRemoteJWKSet>; lastOk: number }>();
  let timer: TimerHandle | undefined;
  let running = false;
  /** When the refresh started: a set never fetched since counts as stale from then. */
  let since = 0;

  for (const url of new Set(o.urls)) {
    sets.set(url, {
      // the set itself never ages out (cacheMaxAge): refresh() replaces it, so a request never waits on a refresh
      keys: createRemoteJWKSet(new URL(url), {
        cacheMaxAge: Number.POSITIVE_INFINITY,
        cooldownDuration: 30_000,
        timeoutDuration: FETCH_TIMEOUT_MS,
      }),
      lastOk: 0,
    });
  }

  async function refresh(): Promise<void> {
    await Promise.all(
      [...sets].map(async ([url, s]) => {
        try {
          await s.keys.reload();
          s.lastOk = o.clock.now();
        } catch (e) {
          o.logger.warn({ err: e, code: 'GW_CDS_KEYS_UNAVAILABLE', jku: url }, 'EHR key set could not be fetched; the keys held are kept');
        }
      }),
    );
  }

  function loop(): void {
    timer = o.clock.setTimeout(
      () => {
        void refresh().finally(() => {
          if (running) loop();
        });
      },
      REFRESH_MS,
      { unref: true },
    );
  }

  return {
    get(jku) {
      const s = sets.get(jku);
      if (!s) return undefined;
      // fetched at some point and not refreshed for too long: the EHR may have withdrawn keys since
      const last = s.lastOk || since;
      if (last > 0 && o.clock.now() - last > MAX_STALE_MS) return undefined;
      return s.keys;
    },
    start() {
      if (running) return;
      running = true;
      since = o.clock.now();
      void refresh();
      loop();
    },
    stop() {
      running = false;
      o.clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
