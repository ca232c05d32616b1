/**
 * The Outbox contract suite: every implementation passes the same tests (CONVENTIONS.md §9, as
 * MQTT.js does for its stores).
 */
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import type { ClaimResult, Outbox, SealedRecord } from '../../../gateway/outbox/outbox.ts';

export type OutboxFactory = (o: { maxBytes: number; clock: ReturnType<typeof createManualClock> }) => Outbox;

export function rec(id: string, partitionKey = `p-${id}`, bytes = 100): SealedRecord {
  return { id, type: 'patient', partitionKey, sealed: Buffer.alloc(bytes, id.charCodeAt(0)) };
}

export function outboxContract(name: string, factory: OutboxFactory): void {
  describe(`Outbox contract: ${name}`, () => {
    let clock: ReturnType<typeof createManualClock>;
    let box: Outbox;
    beforeEach(async () => {
      clock = createManualClock();
      box = factory({ maxBytes: 1024 * 1024, clock });
      await box.open();
    });
    afterEach(async () => {
      await box.close();
    });

    it('claims enqueued records in order and deletes them only on ack', async () => {
      expect(await box.enqueue({ records: [rec('a'), rec('b')] })).toBe('accepted');
      expect(await box.enqueue({ records: [rec('c')] })).toBe('accepted');
      const claimed = box.claim(10).rows;
      expect(claimed.map((r) => r.id)).toEqual(['a', 'b', 'c']);
      expect(Buffer.from(claimed[0].sealed)).toEqual(Buffer.alloc(100, 'a'.charCodeAt(0)));
      expect(box.claim(10).rows).toEqual([]);
      expect(box.stats().inFlight).toBe(3);
      await box.ack(['a', 'b']);
      expect(box.stats()).toMatchObject({ pending: 0, inFlight: 1 });
      await box.ack(['c']);
      expect(box.stats()).toMatchObject({ pending: 0, inFlight: 0, bytes: 0, oldestCreatedAt: null });
    });

    it('commits a source page with its cursor; unchanged rows write nothing, changed rows a new version', async () => {
      const page = (hash: string, cursor: string) => ({
        stream: 's/t',
        rows: [
          { pk: '1', hash, records: [rec(`r1-${hash}`)] },
          { pk: '2', hash: 'h2', records: [rec('r2')] },
        ],
        cursor: { key: 's/t', value: cursor },
      });
      expect(box.getCursor('s/t')).toBeUndefined();
      expect(await box.enqueuePage(page('h1', 'c1'))).toEqual({ outcome: 'accepted', written: 2, unchanged: 0, deadLettered: 0 });
      expect(box.getCursor('s/t')).toBe('c1');
      expect(await box.enqueuePage(page('h1', 'c2'))).toEqual({ outcome: 'accepted', written: 0, unchanged: 2, deadLettered: 0 });
      expect(box.getCursor('s/t')).toBe('c2');
      expect(await box.enqueuePage(page('h1b', 'c3'))).toMatchObject({ written: 1, unchanged: 1 });
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['r1-h1', 'r2', 'r1-h1b']);
      expect(box.listSourceRows('s/t', undefined, 10)).toEqual(['1', '2']);
      // a row marked deleted (in another stream's page, as a tombstone does) leaves the live set
      await box.enqueuePage({
        stream: 's/log',
        rows: [
          { pk: '9', hash: 'x', records: [] },
          { pk: '1', stream: 's/t', hash: '-', records: [rec('del-1')] },
        ],
      });
      expect(box.listSourceRows('s/t', undefined, 10)).toEqual(['2']);
      expect(box.listSourceRows('s/t', '1', 10)).toEqual(['2']);
    });

    it('keeps a row that cannot be mapped as a dead letter in the same page, and moves the cursor past it', async () => {
      const dl = {
        id: 'dl-1',
        kind: 'input' as const,
        createdAt: 1,
        adapter: 'db',
        format: 'sql:db',
        code: 'GW_MAP_FAILED',
        reason: 'x is not a date',
        sealed: Buffer.alloc(50),
      };
      expect(
        await box.enqueuePage({
          stream: 's/t',
          rows: [
            { pk: '1', hash: 'h', records: [], deadLetter: dl },
            { pk: '2', hash: 'h', records: [rec('ok')] },
          ],
          cursor: { key: 'k', value: 'after-2' },
        }),
      ).toEqual({ outcome: 'accepted', written: 1, unchanged: 0, deadLettered: 1 });
      expect(box.listDeadLetters().map((d) => d.id)).toEqual(['dl-1']);
      expect(box.getCursor('k')).toBe('after-2');
    });

    it('refuses a whole page that does not fit under the cap: no record, no cursor', async () => {
      const small = factory({ maxBytes: 1000, clock });
      await small.open();
      try {
        expect(
          (
            await small.enqueuePage({
              stream: 's',
              rows: [
                { pk: '1', hash: 'a', records: [rec('a', 'p', 300)] },
                { pk: '2', hash: 'b', records: [rec('b', 'p', 800)] },
              ],
              cursor: { key: 'k', value: 'v' },
            })
          ).outcome,
        ).toBe('full');
        expect(small.getCursor('k')).toBeUndefined();
        expect(small.claim(10).rows).toEqual([]);
        expect(small.listSourceRows('s', undefined, 10)).toEqual([]);
      } finally {
        await small.close();
      }
    });

    it('keeps a taken command, with its replay guard, until it is finished — across a reopen', async () => {
      expect(
        await box.enqueue({
          records: [],
          dedupe: { key: 'command|c1', hash: 'h' },
          command: { id: 'c1', sealed: Buffer.from('sealed-cmd') },
        }),
      ).toBe('accepted');
      expect(
        await box.enqueue({ records: [], dedupe: { key: 'command|c1', hash: 'h' }, command: { id: 'c1', sealed: Buffer.from('again') } }),
      ).toBe('duplicate');
      await box.close();
      await box.open();
      expect(box.pendingCommands().map((c) => [c.id, Buffer.from(c.sealed).toString()])).toEqual([['c1', 'sealed-cmd']]);
      await box.finishCommand('c1');
      expect(box.pendingCommands()).toEqual([]);
    });

    it('keeps a bundle (records of one partition in one row) whole: claimed with its record ids, dead-lettered and put back with them', async () => {
      const bundle: SealedRecord = { ...rec('b1+2', 'p-x'), type: 'bundle', recordIds: ['b1', 'b2'] };
      expect(await box.enqueue({ records: [rec('a', 'p-x'), bundle, rec('c', 'p-x')] })).toBe('accepted');
      const claimed = box.claim(10).rows;
      expect(claimed.map((r) => [r.id, r.recordIds])).toEqual([
        ['a', undefined],
        ['b1+2', ['b1', 'b2']],
        ['c', undefined],
      ]);
      await box.ack(['a']);
      await box.deadLetter(['b1+2'], 'GW_SINK_REJECTED', 'b2: refused');
      const dl = box.getDeadLetter('b1+2');
      expect(dl).toMatchObject({ kind: 'record', recordType: 'bundle', partitionKey: 'p-x', recordIds: ['b1', 'b2'] });
      expect(box.listDeadLetters()).toMatchObject([{ id: 'b1+2', recordIds: ['b1', 'b2'] }]);
      // a replay enqueues it as it was
      expect(
        await box.enqueue({
          records: [{ id: dl!.id, type: dl!.recordType!, partitionKey: dl!.partitionKey!, sealed: dl!.sealed, recordIds: dl!.recordIds }],
        }),
      ).toBe('accepted');
      // held behind `c` of its partition while that is in flight, then claimed whole
      expect(box.claim(10).rows).toEqual([]);
      await box.ack(['c']);
      expect(box.claim(10).rows.map((r) => [r.id, r.recordIds])).toEqual([['b1+2', ['b1', 'b2']]]);
    });

    it('splits a bundle the cloud refused part of: the refused records become dead letters on their own and the row goes, in one step', async () => {
      const bundle: SealedRecord = { ...rec('b1+3', 'p-x'), type: 'bundle', recordIds: ['b1', 'b2', 'b3'] };
      await box.enqueue({ records: [bundle, rec('c', 'p-x')] });
      expect(box.claim(3).rows.map((r) => r.id)).toEqual(['b1+3']);
      const refused = {
        id: 'b2',
        kind: 'record' as const,
        createdAt: clock.now(),
        adapter: 'relay',
        format: 'canonical',
        code: 'GW_SINK_REJECTED',
        reason: 'bad coverage',
        recordType: 'coverage',
        partitionKey: 'p-x',
        sealed: Buffer.alloc(50, 7),
      };
      expect(await box.splitRefused('b1+3', [refused], 'GW_SINK_REJECTED', 'b2: bad coverage')).toBe('split');
      expect(box.getDeadLetter('b2')).toMatchObject({
        kind: 'record',
        reason: 'bad coverage',
        recordType: 'coverage',
        partitionKey: 'p-x',
      });
      expect(box.getDeadLetter('b2')!.recordIds).toBeUndefined();
      expect(box.getDeadLetter('b1+3')).toBeUndefined();
      // the row's bytes left with it; the dead letter's came in
      expect(box.stats()).toMatchObject({ pending: 1, inFlight: 0, deadLetters: 1, bytes: 100 + 64 + (50 + 64) });
      // its partition is free again
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['c']);
      expect(await box.splitRefused('nothing+2', [refused], 'GW_SINK_REJECTED', 'x')).toBe('gone');
      expect(box.stats()).toMatchObject({ deadLetters: 1 });
    });

    it('moves a bundle whole, and stores none of its records alone, when the dead letters cannot take all its refused records', async () => {
      // dead letters may take a quarter of the cap (256 KiB here): fill most of it
      expect(
        await box.addDeadLetter({
          id: 'in1',
          kind: 'input',
          createdAt: clock.now(),
          adapter: 'hl7v2',
          format: 'hl7v2',
          code: 'GW_PARSE_FAILED',
          reason: 'bad',
          sealed: Buffer.alloc(250 * 1024),
        }),
      ).toBe('stored');
      await box.enqueue({ records: [{ ...rec('d1+2', 'p-y'), type: 'bundle', recordIds: ['d1', 'd2'] }] });
      box.claim(10).rows;
      const entry = (id: string, bytes: number) => ({
        id,
        kind: 'record' as const,
        createdAt: clock.now(),
        adapter: 'relay',
        format: 'canonical',
        code: 'GW_SINK_REJECTED',
        reason: 'refused',
        recordType: 'patient',
        partitionKey: 'p-y',
        sealed: Buffer.alloc(bytes, 1),
      });
      // the first would fit alone, the second not
      expect(
        await box.splitRefused('d1+2', [entry('d1', 1000), entry('d2', 8 * 1024)], 'GW_SINK_REJECTED', 'd1: refused; d2: refused'),
      ).toBe('moved');
      expect(box.getDeadLetter('d1')).toBeUndefined();
      expect(box.getDeadLetter('d2')).toBeUndefined();
      expect(box.getDeadLetter('d1+2')).toMatchObject({
        code: 'GW_SINK_REJECTED',
        reason: 'd1: refused; d2: refused',
        recordIds: ['d1', 'd2'],
      });
      expect(box.stats()).toMatchObject({ pending: 0, inFlight: 0, deadLetters: 2 });
    });

    it("counts a bundle's records against the claim size: stops before a bundle that does not fit, takes one larger than the size alone", async () => {
      const bundle = (id: string, ids: string[], p: string): SealedRecord => ({ ...rec(id, p), type: 'bundle', recordIds: ids });
      await box.enqueue({
        records: [
          rec('a', 'p1'),
          bundle('b+3', ['b', 'b2', 'b3'], 'p2'),
          rec('c', 'p3'),
          bundle('d+5', ['d', 'd2', 'd3', 'd4', 'd5'], 'p4'),
          rec('e', 'p5'),
        ],
      });
      const ids = (c: ClaimResult) => ({ ids: c.rows.map((r) => r.id), full: c.full });
      expect(ids(box.claim(4))).toEqual({ ids: ['a', 'b+3'], full: true });
      expect(ids(box.claim(3))).toEqual({ ids: ['c'], full: true });
      expect(ids(box.claim(3))).toEqual({ ids: ['d+5'], full: true });
      expect(ids(box.claim(3))).toEqual({ ids: ['e'], full: false });
    });

    it('respects the claim size', async () => {
      await box.enqueue({ records: ['a', 'b', 'c', 'd'].map((i) => rec(i)) });
      expect(box.claim(3).rows.map((r) => r.id)).toEqual(['a', 'b', 'c']);
      expect(box.claim(3).rows.map((r) => r.id)).toEqual(['d']);
    });

    it('never lets a later record of a partition overtake an earlier one in flight or waiting', async () => {
      await box.enqueue({ records: [rec('a1', 'P'), rec('b1', 'Q')] });
      await box.enqueue({ records: [rec('a2', 'P'), rec('c1', 'R')] });
      const first = box.claim(1).rows;
      expect(first.map((r) => r.id)).toEqual(['a1']);
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['b1', 'c1']);
      await box.retryLater(['a1'], clock.now() + 5000, 'GW_SINK_TIMEOUT');
      expect(box.claim(10).rows).toEqual([]);
      expect(box.stats().waitingRetry).toBe(1);
      expect(box.nextRetryAt()).toBe(clock.now() + 5000);
      clock.advance(5000);
      const again = box.claim(10).rows;
      expect(again.map((r) => r.id)).toEqual(['a1', 'a2']);
      expect(again[0].attempts).toBe(1);
    });

    it('says when a claim left rows held back behind a patient in flight (the relay then claims again as soon as a batch finishes)', async () => {
      await box.enqueue({ records: [rec('p0', 'P'), rec('p1', 'P'), rec('q0', 'Q')] });
      const held = (c: ClaimResult) => ({ ids: c.rows.map((r) => r.id), heldBack: c.heldBack });
      expect(held(box.claim(1))).toEqual({ ids: ['p0'], heldBack: true });
      expect(held(box.claim(10))).toEqual({ ids: ['q0'], heldBack: true });
      await box.ack(['p0', 'q0']);
      expect(held(box.claim(10))).toEqual({ ids: ['p1'], heldBack: false });
      expect(held(box.claim(10))).toEqual({ ids: [], heldBack: false });
    });

    it('claims rows held back behind a patient in flight once it is acked, in order, without losing later rows', async () => {
      await box.enqueue({ records: [rec('p0', 'P'), rec('a', 'A'), rec('p1', 'P'), rec('b', 'B'), rec('p2', 'P'), rec('c', 'C')] });
      expect(box.claim(1).rows.map((r) => r.id)).toEqual(['p0']);
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['a', 'b', 'c']);
      await box.enqueue({ records: [rec('d', 'D'), rec('p3', 'P')] });
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['d']);
      await box.ack(['p0', 'a']);
      expect(box.claim(2).rows.map((r) => r.id)).toEqual(['p1', 'p2']);
      expect(box.claim(10).rows).toEqual([]);
      await box.ack(['p1', 'p2']);
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['p3']);
    });

    it('recognises a resend (same key, same hash) and a conflict (same key, other hash)', async () => {
      expect(await box.enqueue({ records: [rec('a')], dedupe: { key: 'k1', hash: 'h1' } })).toBe('accepted');
      expect(await box.enqueue({ records: [rec('a')], dedupe: { key: 'k1', hash: 'h1' } })).toBe('duplicate');
      expect(await box.enqueue({ records: [rec('x')], dedupe: { key: 'k1', hash: 'h2' } })).toBe('conflict');
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['a']);
    });

    it('remembers resends after the records were delivered', async () => {
      await box.enqueue({ records: [rec('a')], dedupe: { key: 'k1', hash: 'h1' } });
      await box.ack(box.claim(10).rows.map((r) => r.id));
      expect(await box.enqueue({ records: [rec('a')], dedupe: { key: 'k1', hash: 'h1' } })).toBe('duplicate');
    });

    it('refuses input at the byte cap and accepts again after acks free space', async () => {
      const small = factory({ maxBytes: 1024 * 1024, clock });
      await small.open();
      const big = (id: string) => rec(id, id, 400 * 1024);
      expect(await small.enqueue({ records: [big('a')] })).toBe('accepted');
      expect(await small.enqueue({ records: [big('b')] })).toBe('accepted');
      expect(await small.enqueue({ records: [big('c')] })).toBe('full');
      expect(small.claim(10).rows.map((r) => r.id)).toEqual(['a', 'b']);
      await small.ack(['a']);
      expect(await small.enqueue({ records: [big('c')] })).toBe('accepted');
      await small.close();
    });

    it('answers a resend of a message it holds as duplicate even at the byte cap (the sender must not be told to retry it), and a conflict as conflict', async () => {
      const small = factory({ maxBytes: 1000, clock });
      await small.open();
      try {
        expect(await small.enqueue({ records: [rec('a', 'p', 800)], dedupe: { key: 'SYS|FAC|MSG-1', hash: 'h1' } })).toBe('accepted');
        // the outbox is at its cap now: a new message does not fit ...
        expect(await small.enqueue({ records: [rec('b', 'p', 800)], dedupe: { key: 'SYS|FAC|MSG-2', hash: 'h2' } })).toBe('full');
        // ... but the resend of the one it holds is answered from the resend log first
        expect(await small.enqueue({ records: [rec('a', 'p', 800)], dedupe: { key: 'SYS|FAC|MSG-1', hash: 'h1' } })).toBe('duplicate');
        expect(await small.enqueue({ records: [rec('x', 'p', 800)], dedupe: { key: 'SYS|FAC|MSG-1', hash: 'other' } })).toBe('conflict');
        // and the message refused as full was not remembered: after space is freed it is accepted
        const { rows } = small.claim(10);
        expect(rows.map((r) => r.id)).toEqual(['a']);
        await small.ack(['a']);
        expect(await small.enqueue({ records: [rec('b', 'p', 800)], dedupe: { key: 'SYS|FAC|MSG-2', hash: 'h2' } })).toBe('accepted');
      } finally {
        await small.close();
      }
    });

    it('refuses a page whose dead letter would take the dead letters past their share of the cap: no record, no dead letter, no cursor', async () => {
      // dead letters may take a quarter of the cap (256 KiB here); the page's dead letter is larger
      const dl = {
        id: 'dl-big',
        kind: 'input' as const,
        createdAt: 1,
        adapter: 'db',
        format: 'sql:db',
        code: 'GW_MAP_FAILED',
        reason: 'x is not a date',
        sealed: Buffer.alloc(300 * 1024),
      };
      expect(
        await box.enqueuePage({
          stream: 's/t',
          rows: [
            { pk: '1', hash: 'h', records: [], deadLetter: dl },
            { pk: '2', hash: 'h', records: [rec('ok')] },
          ],
          cursor: { key: 'k', value: 'after-2' },
        }),
      ).toEqual({ outcome: 'full', written: 0, unchanged: 0, deadLettered: 0 });
      expect(box.getCursor('k')).toBeUndefined();
      expect(box.listDeadLetters()).toEqual([]);
      expect(box.claim(10).rows).toEqual([]);
      expect(box.listSourceRows('s/t', undefined, 10)).toEqual([]);
      expect(box.stats()).toMatchObject({ bytes: 0, deadLetters: 0 });
      // the same dead letter through addDeadLetter is refused by the same rule
      expect(await box.addDeadLetter(dl)).toBe('full');
    });

    it('moves records to dead letters with the reason, and keeps input dead letters', async () => {
      await box.enqueue({ records: [rec('a', 'P')] });
      box.claim(1).rows;
      await box.deadLetter(['a'], 'GW_SINK_REJECTED', 'schema: /data/sex');
      expect(box.stats()).toMatchObject({ pending: 0, inFlight: 0, deadLetters: 1 });
      const d = box.getDeadLetter('a');
      expect(d).toMatchObject({
        id: 'a',
        kind: 'record',
        code: 'GW_SINK_REJECTED',
        reason: 'schema: /data/sex',
        recordType: 'patient',
        partitionKey: 'P',
      });
      expect(Buffer.from(d!.sealed)).toEqual(Buffer.alloc(100, 'a'.charCodeAt(0)));
      expect(
        await box.addDeadLetter({
          id: 'in1',
          kind: 'input',
          createdAt: clock.now() + 1,
          adapter: 'hl7v2',
          format: 'hl7v2',
          code: 'GW_PARSE_FAILED',
          reason: 'bad',
          location: 'MSH-1-9',
          sealed: Buffer.from('x'),
        }),
      ).toBe('stored');
      expect(box.listDeadLetters().map((x) => x.id)).toEqual(['a', 'in1']);
      expect(box.listDeadLetters({ limit: 1, offset: 1 }).map((x) => x.id)).toEqual(['in1']);
      expect(await box.removeDeadLetter('in1')).toBe(true);
      expect(await box.removeDeadLetter('in1')).toBe(false);
      expect(box.getDeadLetter('in1')).toBeUndefined();
    });

    it('counts a dead letter once when a row of the same id is dead-lettered again (the later one replaces it)', async () => {
      for (let i = 0; i < 2; i++) {
        await box.enqueue({ records: [rec('a', 'P')] });
        box.claim(1).rows;
        await box.deadLetter(['a'], 'GW_SINK_REJECTED', `refused ${i}`);
      }
      expect(box.getDeadLetter('a')).toMatchObject({ reason: 'refused 1' });
      expect(box.stats()).toMatchObject({ pending: 0, deadLetters: 1, bytes: 100 + 64 });
      await box.removeDeadLetter('a');
      expect(box.stats()).toMatchObject({ deadLetters: 0, bytes: 0 });
      // and through a bundle moved whole
      await box.addDeadLetter({
        id: 'b+2',
        kind: 'record',
        createdAt: clock.now(),
        adapter: 'relay',
        format: 'canonical',
        code: 'GW_SINK_REJECTED',
        reason: 'old',
        sealed: Buffer.alloc(10),
      });
      await box.enqueue({ records: [{ ...rec('b+2', 'Q'), type: 'bundle', recordIds: ['b', 'b2'] }] });
      box.claim(10).rows;
      const big = {
        id: 'b2',
        kind: 'record' as const,
        createdAt: clock.now(),
        adapter: 'relay',
        format: 'canonical',
        code: 'GW_SINK_REJECTED',
        reason: 'x',
        sealed: Buffer.alloc(300 * 1024),
      };
      expect(await box.splitRefused('b+2', [big], 'GW_SINK_REJECTED', 'b2: x')).toBe('moved');
      expect(box.stats()).toMatchObject({ deadLetters: 1, bytes: 100 + 64 });
    });

    it('delivers a record id enqueued twice at least once, one copy at a time (the cloud drops the copy)', async () => {
      await box.enqueue({ records: [rec('a')] });
      await box.enqueue({ records: [rec('a')] });
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['a']);
      await box.ack(['a']);
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['a']);
      await box.ack(['a']);
      expect(box.claim(10).rows).toEqual([]);
      expect(box.stats()).toMatchObject({ pending: 0, inFlight: 0, bytes: 0 });
    });

    it('reports the oldest record for status', async () => {
      await box.enqueue({ records: [rec('a')] });
      const t0 = clock.now();
      clock.advance(1000);
      await box.enqueue({ records: [rec('b')] });
      expect(box.stats().oldestCreatedAt).toBe(t0);
    });
  });
}
