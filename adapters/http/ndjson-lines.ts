/**
 * The lines of an NDJSON body as they arrive, in bounded memory: never the whole file, at most one
 * line plus one chunk. A line longer than `maxLineBytes` is not assembled (a server sending a
 * gigabyte without a newline would otherwise fill the PC's memory): it is reported as too long
 * and skipped up to its end, and its number still counts, so a resume position stays true.
 */
export interface NdjsonLine {
  /** 0-based line number in the file (blank lines count). */
  n: number;
  /** The line's text, or undefined when it was longer than the cap. */
  text: string | undefined;
}

export async function* ndjsonLines(body: ReadableStream<Uint8Array>, maxLineBytes: number): AsyncGenerator<NdjsonLine> {
  const reader = body.getReader();
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  let n = 0;
  const take = (): NdjsonLine => {
    const line: NdjsonLine = { n, text: tooLong ? undefined : Buffer.concat(parts, size).toString('utf8').replace(/\r$/, '') };
    n++;
    parts = [];
    size = 0;
    tooLong = false;
    return line;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10)) {
        if (!tooLong && size + nl <= maxLineBytes) {
          parts.push(chunk.subarray(0, nl));
          size += nl;
        } else tooLong = true;
        const line = take();
        if (line.text === undefined || line.text.trim() !== '') yield line;
        chunk = chunk.subarray(nl + 1);
      }
      if (chunk.length) {
        if (!tooLong && size + chunk.length <= maxLineBytes) {
          // copied: the stream may reuse its chunk's memory
          parts.push(Buffer.from(chunk));
          size += chunk.length;
        } else {
          tooLong = true;
          parts = [];
          size = 0;
        }
      }
    }
    if (tooLong || size > 0) {
      const line = take();
      if (line.text === undefined || line.text.trim() !== '') yield line;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
