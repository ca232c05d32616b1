/**
 * A secret the vendor replaces as it is used — an OAuth refresh token that rotates (RFC 6749 §6:
 * "the authorization server MAY issue a new refresh token", and then may revoke the old one) —
 * kept sealed in the source's SecretStore, whose secrets are written once and never replaced.
 *
 * So each value is a new generation: `<name>-<n>` sealed, created exclusively (a second writer of
 * the same generation loses and takes the next), and `<name>.gen` (public: a number, no secret)
 * remembers the newest; a crash between the two is healed by looking past it. Each generation
 * carries a fingerprint of the configured value it descends from (inside the seal): when the
 * config holds another value — the practice authorized the gateway again — the configured one
 * wins and a new line of generations begins from it. Until then the newest stored one wins.
 *
 * The newest is read again at each use, so another process that rotated it (`api check` beside
 * the running gateway) is followed rather than overwritten with a revoked value.
 *
 * Superseded generations stay on disk, sealed (the store has no delete); the vendor has revoked
 * them. The one window a crash can cost: between the token endpoint's answer and this write; the
 * write happens before the new access token is used, so the window is one file write long.
 */
import { createHash } from 'node:crypto';
import type { SecretStore } from '../../contracts.ts';

export interface RotatingSecret {
  /** The value to use now. */
  current(): string;
  /** Keeps a new value (no-op when it is the current one). */
  rotate(next: string): void;
  /** The stored generation in use (0: the configured value). */
  generation(): number;
}

interface Stored {
  value: string;
  /** sha256 of the configured value this line began from. */
  seed: string;
}

const fingerprint = (v: string) => createHash('sha256').update(v, 'utf8').digest('hex');

export function createRotatingSecret(store: SecretStore, name: string, configured: string): RotatingSecret {
  const seed = fingerprint(configured);
  const secretName = (g: number) => `${name}-${g}`;
  const pointer = `${name}.gen`;

  const read = (g: number): Stored | undefined => {
    const b = store.readSecret(secretName(g));
    if (!b) return undefined;
    const v = JSON.parse(b.toString('utf8')) as Stored;
    return typeof v.value === 'string' && typeof v.seed === 'string' ? v : undefined;
  };

  /** The newest generation written (the pointer, and any written after it before a crash). */
  function newest(): number {
    let g = Number(store.readPublic(pointer) ?? '0');
    if (!Number.isInteger(g) || g < 0) g = 0;
    while (store.readSecret(secretName(g + 1)) !== undefined) g++;
    return g;
  }

  /** The newest stored value of this line, or the configured one: read each time, so a second process's rotation (`api check` beside a running gateway) is seen. */
  function load(): { gen: number; value: string; using: number } {
    const gen = newest();
    const top = gen > 0 ? read(gen) : undefined;
    return top && top.seed === seed ? { gen, value: top.value, using: gen } : { gen, value: configured, using: 0 };
  }

  return {
    current: () => load().value,
    generation: () => load().using,
    rotate(next) {
      const now = load();
      if (next === now.value) return;
      const bytes = Buffer.from(JSON.stringify({ value: next, seed } satisfies Stored), 'utf8');
      let g = now.gen + 1;
      while (!store.createSecret(secretName(g), bytes)) g++;
      store.writePublic(pointer, String(g));
    },
  };
}
