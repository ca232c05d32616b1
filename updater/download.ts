/**
 * Downloads an update target beside its destination with resume (issue 16 point 7): bytes go to
 * `<dest>.part`, appended and fsynced as they come; an interrupted download (a dropped connection,
 * a restart) continues from the `.part` file's size with an HTTP `Range` request. A server that
 * ignores the range (200 instead of 206), or answers with another range, restarts from zero rather
 * than stitching foreign bytes. Only a file that matches the manifest's size and SHA-256 is renamed
 * to `dest`; a mismatch removes the `.part` (its bytes are not to be trusted or resumed) and refuses.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { GatewayError } from '../gateway/errors.ts';
import { type UpdateTarget, verifyTargetFile } from './manifest.ts';

export interface DownloadProgress {
  received: number;
  size: number;
  resumedFrom: number;
}

function partSize(part: string): number {
  try {
    return statSync(part).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

/** One attempt: resumes what `.part` holds, verifies, renames to dest. Throws GW_UPDATE_REFUSED (bad file) or the transport error (retry later: the `.part` stays). */
export async function downloadTarget(
  target: UpdateTarget,
  dest: string,
  o: { onProgress?: (p: DownloadProgress) => void; signal?: AbortSignal; fetchImpl?: typeof fetch } = {},
): Promise<DownloadProgress> {
  const part = `${dest}.part`;
  let have = partSize(part);
  if (have > target.size) {
    rmSync(part, { force: true });
    have = 0;
  }
  const resumedFrom = have;
  if (have < target.size) {
    const res = await (o.fetchImpl ?? fetch)(target.url, {
      headers: have > 0 ? { range: `bytes=${have}-` } : {},
      signal: o.signal,
      redirect: 'follow',
    });
    let append = have > 0;
    if (res.status === 206) {
      const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== have) append = false;
    } else if (res.status === 200) append = false;
    else {
      await res.body?.cancel();
      throw new GatewayError('GW_UPDATE_REFUSED', `download of ${target.url} answered HTTP ${res.status}`);
    }
    if (!append && res.status === 206) {
      // a range we did not ask for: start again from zero on the next attempt
      await res.body?.cancel();
      rmSync(part, { force: true });
      throw new Error(`download of ${target.url} answered another range than bytes=${have}-; restarting from zero`);
    }
    if (!append) have = 0;
    const fd = openSync(part, append ? 'a' : 'w', 0o600);
    let refused = false;
    try {
      if (!res.body) throw new Error(`download of ${target.url} has no body`);
      for await (const chunk of res.body) {
        const b = chunk as Uint8Array;
        if (have + b.length > target.size)
          throw new GatewayError('GW_UPDATE_REFUSED', `download of ${target.url} is longer than the manifest's ${target.size} bytes`);
        let off = 0;
        while (off < b.length) off += writeSync(fd, b, off, b.length - off);
        have += b.length;
        o.onProgress?.({ received: have, size: target.size, resumedFrom });
      }
      fsyncSync(fd);
    } catch (e) {
      refused = e instanceof GatewayError;
      throw e;
    } finally {
      closeSync(fd);
      // closed first: Windows cannot remove an open file
      if (refused) rmSync(part, { force: true });
    }
  }
  try {
    await verifyTargetFile(part, target);
  } catch (e) {
    rmSync(part, { force: true });
    throw e;
  }
  renameSync(part, dest);
  return { received: have, size: target.size, resumedFrom };
}
