/**
 * The data folder: really writable (a probe file written, fsynced and removed — what the outbox
 * needs, not what the permission bits suggest: a read-only mount or a full disk shows here), and
 * its free space against the outbox's disk reserve (`outbox.diskReserveBytes`, below which the
 * disk guard refuses input) and the outbox's cap (`outbox.maxBytes`, the room it may need).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { open, statfs, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { accessProblem, needsConfig, notChecked, type CheckResult, type DoctorCheck } from '../check.ts';

const MiB = 1024 * 1024;
const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const PROBE_BYTES = 4096;

const why: Record<string, string> = {
  EROFS: 'the file system is mounted read-only',
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
};

export const dataFolderCheck: DoctorCheck = {
  id: 'data folder',
  async run(ctx) {
    const name = 'data folder';
    if (!ctx.paths) return [needsConfig(name, ctx)];
    const dir = ctx.paths.dataDir;
    if (!existsSync(dir))
      return [
        {
          name,
          status: 'warn',
          evidence: `${dir} does not exist yet (the first start makes it)`,
          todo: `check that ${dirname(dir)} is on the disk meant for the outbox, then start the gateway`,
        },
      ];
    const closed = accessProblem(dir, 'write');
    if (closed && (process.getuid?.() ?? 0) !== 0) return [notChecked(name, closed)];
    if (!statSync(dir).isDirectory())
      return [{ name, status: 'fail', evidence: `${dir} is not a folder`, todo: 'set gateway.dataDir to a folder' }];
    const probe = join(dir, `.doctor-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    let step = 'create';
    try {
      const fh = await open(probe, 'wx', 0o600);
      try {
        step = 'write';
        const { bytesWritten } = await fh.write(Buffer.alloc(PROBE_BYTES, 0x2e));
        // a nearly full disk can take part of a write without an error
        if (bytesWritten !== PROBE_BYTES)
          throw Object.assign(new Error(`short write: ${bytesWritten} of ${PROBE_BYTES} bytes`), { code: 'ENOSPC' });
        step = 'fsync';
        await fh.sync();
      } finally {
        await fh.close();
      }
      step = 'remove';
      await unlink(probe);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      if (step !== 'create') await unlink(probe).catch(() => undefined);
      return [
        {
          name,
          status: 'fail',
          evidence: `${dir}: could not ${step} a probe file: ${code}${why[code] ? ` (${why[code]})` : ''}`,
          todo:
            code === 'ENOSPC' || code === 'EDQUOT'
              ? 'free space on that disk (the outbox cannot commit what it receives)'
              : code === 'EROFS'
                ? 'remount the disk read-write (a disk error may have made it read-only: check dmesg) or move gateway.dataDir'
                : 'give the service user write access to the folder (install sets its owner and mode)',
          data: { dir, step, code },
        },
      ];
    }
    return [
      {
        name,
        status: 'pass',
        evidence: `${dir}: wrote, fsynced and removed a ${PROBE_BYTES}-byte probe file`,
        data: { dir, probeBytes: PROBE_BYTES },
      },
    ];
  },
};

export const diskSpaceCheck: DoctorCheck = {
  id: 'disk space',
  async run(ctx) {
    const name = 'disk space';
    if (!ctx.paths || !ctx.config) return [needsConfig(name, ctx)];
    let dir = ctx.paths.dataDir;
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    const s = await statfs(dir);
    const free = Number(s.bavail) * Number(s.bsize);
    const total = Number(s.blocks) * Number(s.bsize);
    const reserve = ctx.config.outbox.diskReserveBytes;
    const cap = ctx.config.outbox.maxBytes;
    let outboxBytes = 0;
    try {
      outboxBytes = statSync(ctx.paths.outboxFile).size;
    } catch {
      /* no outbox yet */
    }
    const data = { dir, freeBytes: free, totalBytes: total, diskReserveBytes: reserve, outboxMaxBytes: cap, outboxFileBytes: outboxBytes };
    const ev = `${free} bytes free (${mib(free)}) of ${mib(total)} on the volume of ${dir}; outbox.diskReserveBytes ${reserve} (${mib(reserve)})`;
    const results: CheckResult[] = [];
    if (free < reserve || free === 0)
      results.push({
        name,
        status: 'fail',
        evidence: `${ev}: below the reserve, the gateway refuses new input (GW_DISK_LOW)`,
        todo: "free space on that disk (old logs, other programs' files) or move gateway.dataDir to a bigger disk; input resumes by itself once space is back",
        data,
      });
    else if (free < 2 * reserve)
      results.push({
        name,
        status: 'warn',
        evidence: `${ev}: less than twice the reserve left`,
        todo: 'free space on that disk before it reaches the reserve (then new input is refused)',
        data,
      });
    else if (free + outboxBytes < cap + reserve)
      results.push({
        name,
        status: 'warn',
        evidence: `${ev}: not room for the outbox to reach its cap (outbox.maxBytes ${cap}, file now ${outboxBytes} bytes) and keep the reserve — a long cloud outage would fill the disk before the outbox`,
        todo: 'free space, or lower outbox.maxBytes to what the disk can hold',
        data,
      });
    else results.push({ name, status: 'pass', evidence: ev, data });
    const g = await ctx.gateway();
    const disk = g.state === 'answering' ? (g.status.disk as { low?: boolean; freeBytes?: number | null } | undefined) : undefined;
    if (disk?.low && results[0].status !== 'fail')
      results[0] = {
        ...results[0],
        status: 'fail',
        evidence: `${results[0].evidence}; the running gateway's disk guard says low (it saw ${disk.freeBytes ?? '?'} bytes free): input is refused`,
        todo: 'free space on that disk; input resumes by itself once the guard sees space again',
      };
    return results;
  },
};
