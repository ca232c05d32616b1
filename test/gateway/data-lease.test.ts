/** The data folder's lease: one owner, stale leases taken over once, release only of one's own, the updater's hand-over. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDataLease, LEASE_FILE, linuxProcessStart, type DataLease, type LeaseHolder } from '../../gateway/data-lease.ts';
import { isGatewayError } from '../../gateway/errors.ts';

const root = new URL('../../', import.meta.url).pathname;
const leases: DataLease[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const l of leases.splice(0)) l.release();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
const take = (dir: string, opts?: Parameters<typeof acquireDataLease>[1]) => {
  const l = acquireDataLease(dir, opts);
  leases.push(l);
  return l;
};
const tempDir = () => mkdtempSync(join(tmpdir(), 'ewml-lease-'));
const onDisk = (dir: string) => JSON.parse(readFileSync(join(dir, LEASE_FILE), 'utf8')) as LeaseHolder;
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (isGatewayError(e, 'GW_DATA_DIR_IN_USE')) return e;
    throw e;
  }
  throw new Error('the second acquire was not refused');
};

/** A node process that idles until killed: a real pid that can die. */
async function idleChild(): Promise<ChildProcess> {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(c);
  await new Promise<void>((r, j) => {
    c.once('spawn', () => r());
    c.once('error', j);
  });
  return c;
}
async function killed(c: ChildProcess): Promise<void> {
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGKILL');
  await exited;
}

describe('data folder lease', () => {
  it("a second acquire on one folder is refused with GW_DATA_DIR_IN_USE naming the holder's pid and the folder", () => {
    const dir = tempDir();
    const first = take(dir);
    expect(first.holder.pid).toBe(process.pid);
    expect(onDisk(dir)).toEqual(first.holder);
    const e = refusal(() => take(dir));
    expect(e.message).toContain(`the data folder ${dir} is in use by the gateway process ${process.pid} on ${hostname()}`);
    expect(e.details).toMatchObject({ pid: process.pid, dataDir: dir, file: join(dir, LEASE_FILE) });
    // the refused attempt left the holder's lease as it was, and no temporary files behind
    expect(onDisk(dir)).toEqual(first.holder);
    expect(existsSync(join(dir, `${LEASE_FILE}.takeover`))).toBe(false);
  });

  it('a lease of a process that was killed is taken over; release then removes it', async () => {
    const dir = tempDir();
    const c = await idleChild();
    const planted = acquireDataLease(dir, { pid: c.pid });
    expect(onDisk(dir).pid).toBe(c.pid);
    // while that process lives, the lease holds
    expect(refusal(() => take(dir)).message).toContain(`gateway process ${c.pid} `);
    await killed(c);
    const mine = take(dir);
    expect(onDisk(dir)).toEqual(mine.holder);
    expect(mine.holder.pid).toBe(process.pid);
    expect(planted.release()).toBe(false);
    expect(onDisk(dir).token).toBe(mine.holder.token);
    expect(mine.release()).toBe(true);
    expect(existsSync(join(dir, LEASE_FILE))).toBe(false);
    expect(mine.release()).toBe(false);
  });

  it.runIf(process.platform === 'linux')(
    'a lease whose pid now belongs to a process started at another time (pid reuse) is taken over',
    () => {
      const dir = tempDir();
      const ourStart = linuxProcessStart(process.pid);
      expect(ourStart).toMatch(/^\d+$/);
      // this very pid, as if written by an earlier process that had it (another start time)
      const earlier: LeaseHolder = {
        pid: process.pid,
        startedAt: '2026-01-01T00:00:00.000Z',
        host: hostname(),
        token: 'e'.repeat(32),
        processStart: String(Number(ourStart) - 1),
      };
      writeFileSync(join(dir, LEASE_FILE), JSON.stringify(earlier));
      const mine = take(dir);
      expect(onDisk(dir).token).toBe(mine.holder.token);
      expect(mine.holder.processStart).toBe(ourStart);
    },
  );

  it('release leaves a lease that is no longer its own', () => {
    const dir = tempDir();
    const mine = take(dir);
    const other: LeaseHolder = { ...mine.holder, pid: mine.holder.pid, token: 'f'.repeat(32) };
    writeFileSync(join(dir, LEASE_FILE), JSON.stringify(other));
    expect(mine.held()).toBe(false);
    expect(mine.release()).toBe(false);
    expect(onDisk(dir)).toEqual(other);
  });

  it('a lease taken on another host is refused (its processes cannot be checked from here), saying what to do', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, LEASE_FILE),
      JSON.stringify({ pid: 4242, startedAt: '2026-01-01T00:00:00.000Z', host: 'other-pc', token: 'a'.repeat(32) }),
    );
    const e = refusal(() => take(dir));
    expect(e.message).toContain('in use by the gateway process 4242 on other-pc');
    expect(e.message).toContain('delete the lease file');
  });

  it('a damaged lease (empty after a power cut) is taken over once it is not being written', () => {
    const dir = tempDir();
    const file = join(dir, LEASE_FILE);
    writeFileSync(file, '');
    utimesSync(file, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const mine = take(dir);
    expect(onDisk(dir)).toEqual(mine.holder);
  });

  it('a takeover guard left by a taker that died is cleared', async () => {
    const dir = tempDir();
    const c = await idleChild();
    acquireDataLease(dir, { pid: c.pid });
    writeFileSync(
      join(dir, `${LEASE_FILE}.takeover`),
      JSON.stringify({ pid: c.pid, startedAt: new Date().toISOString(), host: hostname(), token: 'b'.repeat(32) }),
    );
    await killed(c);
    const mine = take(dir);
    expect(onDisk(dir).token).toBe(mine.holder.token);
    expect(existsSync(join(dir, `${LEASE_FILE}.takeover`))).toBe(false);
  });

  it("temporary files of a taker killed mid-write are swept once old; a fresh one (a live taker's) is left", () => {
    const dir = tempDir();
    const old = join(dir, `${LEASE_FILE}.${'d'.repeat(32)}.tmp`);
    const fresh = join(dir, `${LEASE_FILE}.${'e'.repeat(32)}.tmp`);
    writeFileSync(old, '{}');
    writeFileSync(fresh, '{}');
    utimesSync(old, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    take(dir);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });

  it('hand-over: the new process takes the lease while the old one still runs, with the token; without it, it is refused', () => {
    const dir = tempDir();
    const old = take(dir);
    const { token } = old.handOver({ toPid: process.pid });
    expect(onDisk(dir).handOver).toMatchObject({ toPid: process.pid, token });
    refusal(() => take(dir));
    refusal(() => take(dir, { handOverToken: 'not-the-token' }));
    // promised to another pid: not ours to take
    refusal(() => take(dir, { handOverToken: token, pid: process.pid + 1_000_000 }));
    const next = take(dir, { handOverToken: token });
    expect(onDisk(dir)).toEqual(next.holder);
    expect(next.holder.handOver).toBeUndefined();
    expect(old.held()).toBe(false);
    expect(old.release()).toBe(false);
    expect(next.held()).toBe(true);
    expect(() => old.handOver()).toThrow(/no longer holds it/);
  });

  it('of several processes racing for one stale lease, exactly one takes it; every other is refused naming the winner', async () => {
    const script = join(tempDir(), 'taker.ts');
    writeFileSync(
      script,
      `
import { existsSync } from 'node:fs';
import { acquireDataLease } from ${JSON.stringify(join(root, 'gateway/data-lease.ts'))};
const [dir, go] = process.argv.slice(2);
const until = Date.now() + 20000;
while (!existsSync(go) && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
let line;
// every taker pauses between judging the lease stale and replacing it, so all of them judge it stale first
const pause = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150);
try { acquireDataLease(dir, { beforeTakeOver: pause }); line = { pid: process.pid, won: true }; } catch (e) { line = { pid: process.pid, won: false, code: e.code, holder: e.details?.pid }; }
process.stdout.write(JSON.stringify(line) + '\\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`,
    );
    for (let round = 0; round < 3; round++) {
      const dir = tempDir();
      const dead = await idleChild();
      acquireDataLease(dir, { pid: dead.pid });
      await killed(dead);
      const go = join(dir, 'go');
      const takers = Array.from({ length: 5 }, () => {
        const c = spawn(process.execPath, [script, dir, go], { stdio: ['pipe', 'pipe', 'inherit'] });
        children.push(c);
        return c;
      });
      const lines = takers.map(
        (c) =>
          new Promise<{ pid: number; won: boolean; code?: string; holder?: number }>((resolve, reject) => {
            let out = '';
            c.stdout!.setEncoding('utf8').on('data', (d: string) => {
              out += d;
              if (out.includes('\n')) resolve(JSON.parse(out));
            });
            c.once('exit', (code) => reject(new Error(`a taker exited (${code}) before answering: ${out}`)));
          }),
      );
      writeFileSync(go, '');
      const answers = await Promise.all(lines);
      const winners = answers.filter((a) => a.won);
      expect(winners.length).toBe(1);
      expect(onDisk(dir).pid).toBe(winners[0].pid);
      for (const a of answers.filter((x) => !x.won)) expect(a).toMatchObject({ code: 'GW_DATA_DIR_IN_USE', holder: winners[0].pid });
      for (const c of takers) c.stdin!.end();
    }
  }, 60_000);
});

describe('two gateways on one data folder', () => {
  it("a second `start` on the folder exits 1 naming the first one's pid; after the first is killed (SIGKILL) a start takes its stale lease over", async () => {
    const { childGateway } = await import('../support/child-gateway.ts');
    const { freePort, waitFor } = await import('../support/net.ts');
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    const config = async (name: string) => {
      const [hl7, admin] = [await freePort(), await freePort()];
      const f = join(dir, `${name}.yaml`);
      writeFileSync(f, `gateway:\n  dataDir: ${dataDir}\n  timezone: UTC\nhl7:\n  port: ${hl7}\nadmin:\n  port: ${admin}\n`);
      return { f, hl7 };
    };
    const a = await config('a');
    const b = await config('b');
    const first = childGateway(
      () => a.f,
      () => a.hl7,
    );
    const second = { err: '', exit: undefined as { code: number | null } | undefined };
    const secondGw = childGateway(
      () => b.f,
      () => b.hl7,
      {
        onOutput: (s, d) => {
          if (s === 'stderr') second.err += d;
        },
        onExit: (e) => {
          second.exit = e;
        },
      },
    );
    try {
      await first.start();
      const pid = first.pid()!;
      expect(onDisk(dataDir).pid).toBe(pid);
      secondGw.spawn();
      await waitFor(() => second.exit !== undefined, 30_000, 'the second gateway to exit');
      expect(second.exit).toMatchObject({ code: 1, signal: null });
      expect(second.err).toContain(
        `error GW_DATA_DIR_IN_USE: the data folder ${dataDir} is in use by the gateway process ${pid} on ${hostname()}`,
      );
      expect(second.err).toContain('what to do: Stop the other gateway');
      expect(first.running()).toBe(true);
      expect(onDisk(dataDir).pid).toBe(pid);
      await first.kill();
      // the killed gateway's lease is stale: the next start takes it over and runs
      await secondGw.start();
      expect(onDisk(dataDir).pid).toBe(secondGw.pid());
      expect(await secondGw.terminate(15_000)).toMatchObject({ code: 0, signal: null });
      expect(existsSync(join(dataDir, LEASE_FILE))).toBe(false);
    } finally {
      await first.kill();
      await secondGw.kill();
    }
  }, 90_000);
});
