/** The EHR's JWT, checked against a real JWK Set server, on a clock the test moves. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeySets } from '../../../gateway/cds-hooks/jwks-keys.ts';
import { createReplayCache } from '../../../gateway/cds-hooks/replay-cache.ts';
import { createTokenVerifier, type TrustedIssuer } from '../../../gateway/cds-hooks/token-verifier.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { startTestEhr, type TestEhr } from './test-ehr.ts';

const AUD = 'https://gw.test/cds-services/eyewear-patient-view';
const unsigned = (claims: Record<string, unknown>, header: Record<string, unknown>) =>
  `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;

describe('CDS Hooks token verifier', () => {
  const clock = createManualClock(Date.now());
  let es: TestEhr;
  let rs: TestEhr;
  let issuers: TrustedIssuer[];
  beforeAll(async () => {
    es = await startTestEhr({ alg: 'ES384', nowMs: () => clock.now() });
    rs = await startTestEhr({ alg: 'RS256', nowMs: () => clock.now() });
    issuers = [
      { iss: es.iss, jku: es.jku },
      { iss: rs.iss, jku: rs.jku },
    ];
  });
  afterAll(async () => {
    await es.stop();
    await rs.stop();
  });
  const make = (o: { maxReplayEntries?: number; list?: TrustedIssuer[] } = {}) => {
    const list = o.list ?? issuers;
    const keys = createKeySets({ urls: list.map((i) => i.jku), clock, logger: createSilentLogger() });
    return createTokenVerifier({ issuers: list, keys, clock, maxReplayEntries: o.maxReplayEntries });
  };

  it('takes ES384 and RS256 tokens, fetches each key set once, and checks a token without jku against the first entry', async () => {
    const v = make();
    for (let i = 0; i < 5; i++) {
      expect((await v.verify(`Bearer ${await es.sign(AUD)}`, [AUD])).ok).toBe(true);
      expect((await v.verify(`bearer ${await rs.sign(AUD)}`, [AUD])).ok).toBe(true);
    }
    expect([es.fetches(), rs.fetches()]).toEqual([1, 1]);
    const noJku = await es.sign(AUD, {}, { jku: undefined });
    expect(await v.verify(`Bearer ${noJku}`, [AUD])).toMatchObject({ ok: true, issuer: { iss: es.iss } });
  });

  it('refuses alg none, a future iat, and a token whose key set cannot be fetched', async () => {
    const v = make();
    const now = Math.floor(clock.now() / 1000);
    const none = unsigned({ iss: es.iss, aud: AUD, iat: now, exp: now + 60, jti: 'n1' }, { alg: 'none', jku: es.jku });
    expect(await v.verify(`Bearer ${none}`, [AUD])).toEqual({ ok: false, reason: 'algorithm' });
    expect(await v.verify(`Bearer ${await es.sign(AUD, { iat: now + 600 })}`, [AUD])).toEqual({ ok: false, reason: 'not-yet-valid' });
    const gone = await startTestEhr({ alg: 'ES256', nowMs: () => clock.now() });
    const token = await gone.sign(AUD);
    await gone.stop();
    const w = make({ list: [{ iss: gone.iss, jku: gone.jku }] });
    expect(await w.verify(`Bearer ${token}`, [AUD])).toEqual({ ok: false, reason: 'keys-unavailable' });
  });

  it('accepts a clock 60 s behind, not 61 s past exp', async () => {
    const v = make();
    const t = await es.sign(AUD, { exp: Math.floor(clock.now() / 1000) + 10 });
    clock.advance(69_000);
    expect((await v.verify(`Bearer ${t}`, [AUD])).ok).toBe(true);
    const u = await es.sign(AUD, { exp: Math.floor(clock.now() / 1000) + 10 });
    clock.advance(71_000);
    expect(await v.verify(`Bearer ${u}`, [AUD])).toEqual({ ok: false, reason: 'expired' });
  });

  it('fails closed when the replay cache is full of live tokens, and has room again once they expire', async () => {
    const v = make({ maxReplayEntries: 2 });
    expect((await v.verify(`Bearer ${await es.sign(AUD)}`, [AUD])).ok).toBe(true);
    expect((await v.verify(`Bearer ${await es.sign(AUD)}`, [AUD])).ok).toBe(true);
    expect(await v.verify(`Bearer ${await es.sign(AUD)}`, [AUD])).toEqual({ ok: false, reason: 'replay-cache-full' });
    clock.advance(400_000); // past exp (240 s) and the tolerance
    expect((await v.verify(`Bearer ${await es.sign(AUD)}`, [AUD])).ok).toBe(true);
  });

  it('the replay cache keeps nonces per issuer until their expiry', () => {
    const c = createReplayCache(10);
    expect(c.take('a', 'j1', 2000, 1000)).toBe('fresh');
    expect(c.take('b', 'j1', 2000, 1000)).toBe('fresh');
    expect(c.take('a', 'j1', 2000, 1999)).toBe('replay');
    expect(c.take('a', 'j1', 3000, 2000)).toBe('fresh');
  });
});
