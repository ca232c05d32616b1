/**
 * Checks a built single executable as a file, for the platform that cannot run here (Windows) and
 * cheaply for the one that can (Linux): the structure the OS loader needs, the SEA blob Node will
 * find at start-up, and the fuse that tells Node a blob was injected. Reads only headers, the
 * resource directory or notes, the blob and the read-only data section, with positioned reads: the
 * executable (the size of a Node binary) is never read whole.
 *
 * Windows (PE/COFF, Microsoft's "PE Format" specification): `MZ` and `PE\0\0`, COFF machine 0x8664
 * (AMD64) and an executable image, a PE32+ optional header, subsystem 3 (console: the gateway is a
 * CLI and a service), section table entries that lie inside the file and do not overlap, a resource
 * directory (data directory 2) inside `.rsrc`, holding one RT_RCDATA (type 10) resource named
 * `NODE_SEA_BLOB` (how postject injects and how Node's `FindResourceA(NULL, "NODE_SEA_BLOB",
 * RT_RCDATA)` finds it) whose bytes equal the blob, no certificate table left pointing into a section
 * (a signature made stale by the injection), and the fuse `NODE_SEA_FUSE_…:1`, once, in `.rdata`.
 *
 * Linux (ELF64): x86-64, the blob as a PT_NOTE note named `NODE_SEA_BLOB` (what postject writes and
 * Node walks with `dl_iterate_phdr`), and the fuse flipped, once, in `.rodata`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

/** The sentinel Node's SEA looks for; postject flips its last character from 0 to 1. */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** The resource (PE) / note (ELF) name Node reads the blob from. */
export const SEA_RESOURCE = 'NODE_SEA_BLOB';

export interface Digest {
  size: number;
  sha256: string;
}

/** An executable that fails its checks; `problems` names each one, and the message lists them. */
export class ExecutableCheckError extends Error {
  readonly problems: readonly string[];
  constructor(path: string, problems: string[]) {
    super(`${path} fails its checks: ${problems.join('; ')}`);
    this.name = 'ExecutableCheckError';
    this.problems = problems;
  }
}

export interface PeSection {
  name: string;
  virtualAddress: number;
  virtualSize: number;
  rawOffset: number;
  rawSize: number;
}

export interface PeFacts {
  machine: number;
  subsystem: number;
  sections: PeSection[];
  /** Where the blob lies in the file, and its digest. */
  blob: Digest & { offset: number };
  /** File offset of the fuse string (`NODE_SEA_FUSE_…`; its state character follows the colon). */
  fuseOffset: number;
  /** The certificate table (Authenticode signature), if any. */
  signature: { offset: number; size: number } | null;
}

export interface ElfFacts {
  machine: number;
  blob: Digest & { offset: number };
  fuseOffset: number;
}

/** Size and SHA-256 of a file, read as a stream. */
export async function fileDigest(path: string): Promise<Digest> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    size += (chunk as Buffer).length;
    h.update(chunk as Buffer);
  }
  return { size, sha256: h.digest('hex') };
}

/** A refusal that stops the walk (what follows cannot be found without it). */
class Stop extends Error {}

/** Exactly `len` bytes at `pos`, or a Stop naming what was being read. */
async function readAt(fh: FileHandle, fileSize: number, pos: number, len: number, what: string): Promise<Buffer> {
  if (pos < 0 || len < 0 || pos + len > fileSize)
    throw new Stop(`${what} lies outside the file (bytes ${pos}..${pos + len}, the file has ${fileSize}): truncated or damaged`);
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(b, got, len - got, pos + got);
    if (bytesRead === 0) throw new Stop(`${what}: the file ended early`);
    got += bytesRead;
  }
  return b;
}

/** SHA-256 of `len` bytes at `pos`, read in 1 MB pieces. */
async function hashRange(fh: FileHandle, fileSize: number, pos: number, len: number, what: string): Promise<string> {
  const h = createHash('sha256');
  for (let at = 0; at < len; at += 1 << 20) h.update(await readAt(fh, fileSize, pos + at, Math.min(1 << 20, len - at), what));
  return h.digest('hex');
}

/** The characters that follow each `FUSE:` in a byte range (read in pieces that overlap by the fuse's length). */
async function fuseStates(
  fh: FileHandle,
  fileSize: number,
  pos: number,
  len: number,
  fuse: string,
): Promise<{ state: string; offset: number }[]> {
  const needle = Buffer.from(`${fuse}:`, 'latin1');
  const piece = 4 << 20;
  const states: { state: string; offset: number }[] = [];
  for (let at = 0; at < len; at += piece) {
    // each piece also reads the needle's length beyond it (plus the state byte), so a match across the seam is seen once
    const n = Math.min(piece + needle.length + 1, len - at);
    const b = await readAt(fh, fileSize, pos + at, n, 'the fuse scan');
    for (let i = b.indexOf(needle); i !== -1 && i < piece; i = b.indexOf(needle, i + 1))
      states.push({
        state: i + needle.length < b.length ? String.fromCharCode(b[i + needle.length]) : '(end of section)',
        offset: pos + at + i,
      });
  }
  return states;
}

function fuseProblem(found: { state: string }[], where: string): string | undefined {
  const states = found.map((f) => f.state);
  if (states.length === 0) return `the SEA fuse ${SEA_FUSE} is not in ${where}: not a Node >= 20 binary, or damaged`;
  if (states.length > 1) return `the SEA fuse occurs ${states.length} times in ${where} (Node has it once)`;
  if (states[0] === '0') return `the SEA fuse is ${SEA_FUSE}:0, not flipped to :1: Node would start as plain node and ignore the blob`;
  if (states[0] !== '1') return `the SEA fuse is followed by ${JSON.stringify(states[0])}, neither 0 nor 1: damaged`;
  return undefined;
}

async function blobProblems(fh: FileHandle, fileSize: number, offset: number, size: number, expected: Digest): Promise<string[]> {
  if (size !== expected.size) return [`the ${SEA_RESOURCE} blob is ${size} bytes, the injected blob was ${expected.size}`];
  const sha256 = await hashRange(fh, fileSize, offset, size, `the ${SEA_RESOURCE} blob`);
  if (sha256 !== expected.sha256)
    return [`the ${SEA_RESOURCE} blob's SHA-256 ${sha256} differs from the injected blob's ${expected.sha256}`];
  return [];
}

/** The PE headers: what the loader reads first. Exported so the build can strip a signature with the same reading. */
export interface PeHeaders {
  peOffset: number;
  machine: number;
  characteristics: number;
  optOffset: number;
  magic: number;
  subsystem: number;
  sizeOfImage: number;
  dataDirs: { rva: number; size: number }[];
  /** File offset of data directory entry `i` (to rewrite it). */
  dataDirOffset: (i: number) => number;
  sections: PeSection[];
}

const IMAGE_FILE_MACHINE_AMD64 = 0x8664;
const PE32_PLUS = 0x20b;
const SUBSYSTEM_CONSOLE = 3;
const RT_RCDATA = 10;
const DIR_RESOURCE = 2;
const DIR_SECURITY = 4;

/** Reads and checks the DOS stub pointer, the PE signature, the COFF header, the optional header and the section table. */
export async function readPeHeaders(fh: FileHandle, fileSize: number): Promise<PeHeaders> {
  const dos = await readAt(fh, fileSize, 0, 64, 'the DOS header');
  if (dos.toString('latin1', 0, 2) !== 'MZ') throw new Stop('no MZ signature at offset 0: not a Windows executable');
  const peOffset = dos.readUInt32LE(0x3c);
  const coff = await readAt(fh, fileSize, peOffset, 24, 'the PE signature and COFF header');
  if (!coff.subarray(0, 4).equals(Buffer.from('PE\0\0', 'latin1'))) throw new Stop(`no PE\\0\\0 signature at offset ${peOffset}`);
  const machine = coff.readUInt16LE(4);
  const nSections = coff.readUInt16LE(6);
  const optSize = coff.readUInt16LE(20);
  const characteristics = coff.readUInt16LE(22);
  const optOffset = peOffset + 24;
  if (optSize < 112) throw new Stop(`the optional header is ${optSize} bytes, too small for PE32+`);
  const opt = await readAt(fh, fileSize, optOffset, optSize, 'the optional header');
  const magic = opt.readUInt16LE(0);
  if (magic !== PE32_PLUS) throw new Stop(`optional header magic 0x${magic.toString(16)}, not 0x20b (PE32+, a 64-bit image)`);
  const nDirs = opt.readUInt32LE(108);
  if (112 + 8 * nDirs > optSize) throw new Stop(`${nDirs} data directories do not fit the ${optSize}-byte optional header`);
  const dataDirs = Array.from({ length: nDirs }, (_, i) => ({ rva: opt.readUInt32LE(112 + 8 * i), size: opt.readUInt32LE(116 + 8 * i) }));
  const table = await readAt(fh, fileSize, optOffset + optSize, 40 * nSections, 'the section table');
  const sections = Array.from({ length: nSections }, (_, i) => {
    const s = table.subarray(40 * i, 40 * i + 40);
    const nul = s.subarray(0, 8).indexOf(0);
    return {
      name: s.toString('latin1', 0, nul === -1 ? 8 : nul),
      virtualSize: s.readUInt32LE(8),
      virtualAddress: s.readUInt32LE(12),
      rawSize: s.readUInt32LE(16),
      rawOffset: s.readUInt32LE(20),
    };
  });
  return {
    peOffset,
    machine,
    characteristics,
    optOffset,
    magic,
    subsystem: opt.readUInt16LE(68),
    sizeOfImage: opt.readUInt32LE(56),
    dataDirs,
    dataDirOffset: (i) => optOffset + 112 + 8 * i,
    sections,
  };
}

/** The file offset of an RVA, through the section that maps it. */
function rvaToOffset(sections: PeSection[], rva: number, len: number, what: string): number {
  for (const s of sections) {
    if (rva >= s.virtualAddress && rva + len <= s.virtualAddress + Math.max(s.virtualSize, s.rawSize)) {
      if (rva - s.virtualAddress + len > s.rawSize) throw new Stop(`${what} runs past ${s.name}'s bytes in the file`);
      return s.rawOffset + (rva - s.virtualAddress);
    }
  }
  throw new Stop(`${what} (RVA 0x${rva.toString(16)}) is in no section`);
}

interface ResEntry {
  id?: number;
  name?: string;
  /** offset, from the resource directory's start, of a subdirectory or a data entry */
  target: number;
  isDir: boolean;
}

/** One IMAGE_RESOURCE_DIRECTORY and its entries (names are IMAGE_RESOURCE_DIR_STRING_U: a length, then UTF-16LE). */
async function resourceDir(fh: FileHandle, fileSize: number, base: number, limit: number, at: number): Promise<ResEntry[]> {
  if (at + 16 > limit) throw new Stop('a resource directory lies outside the resource section');
  const hdr = await readAt(fh, fileSize, base + at, 16, 'a resource directory');
  const n = hdr.readUInt16LE(12) + hdr.readUInt16LE(14);
  if (at + 16 + 8 * n > limit) throw new Stop('a resource directory has more entries than the resource section holds');
  const raw = await readAt(fh, fileSize, base + at + 16, 8 * n, 'resource directory entries');
  const entries: ResEntry[] = [];
  for (let i = 0; i < n; i++) {
    const nameField = raw.readUInt32LE(8 * i);
    const off = raw.readUInt32LE(8 * i + 4);
    const e: ResEntry = { target: off & 0x7fffffff, isDir: (off & 0x80000000) !== 0 };
    if (nameField & 0x80000000) {
      const so = nameField & 0x7fffffff;
      if (so + 2 > limit) throw new Stop('a resource name lies outside the resource section');
      const len = (await readAt(fh, fileSize, base + so, 2, 'a resource name')).readUInt16LE(0);
      if (so + 2 + 2 * len > limit) throw new Stop('a resource name runs past the resource section');
      e.name = (await readAt(fh, fileSize, base + so + 2, 2 * len, 'a resource name')).toString('utf16le');
    } else e.id = nameField & 0xffff;
    entries.push(e);
  }
  return entries;
}

/**
 * Checks a Windows x64 single executable against the blob that was injected into it. Returns what
 * it read; throws {@link ExecutableCheckError} listing every problem found.
 */
export async function checkPe(path: string, blob: Digest): Promise<PeFacts> {
  const fh = await open(path, 'r');
  const problems: string[] = [];
  try {
    const fileSize = (await fh.stat()).size;
    const pe = await readPeHeaders(fh, fileSize);
    if (pe.machine !== IMAGE_FILE_MACHINE_AMD64)
      problems.push(`COFF machine 0x${pe.machine.toString(16)}, not 0x8664 (AMD64): built from the wrong Node binary`);
    if (!(pe.characteristics & 0x0002)) problems.push('the COFF header does not mark it an executable image');
    if (pe.characteristics & 0x2000) problems.push('the COFF header marks it a DLL');
    if (pe.subsystem !== SUBSYSTEM_CONSOLE) problems.push(`subsystem ${pe.subsystem}, not 3 (console)`);
    const byOffset = pe.sections.filter((s) => s.rawSize > 0).sort((a, b) => a.rawOffset - b.rawOffset);
    for (const s of pe.sections) if (s.rawOffset + s.rawSize > fileSize) problems.push(`section ${s.name} runs past the end of the file`);
    for (let i = 1; i < byOffset.length; i++)
      if (byOffset[i].rawOffset < byOffset[i - 1].rawOffset + byOffset[i - 1].rawSize)
        problems.push(`sections ${byOffset[i - 1].name} and ${byOffset[i].name} overlap in the file`);
    for (const s of pe.sections)
      if (s.virtualAddress + s.virtualSize > pe.sizeOfImage)
        problems.push(`section ${s.name} ends beyond SizeOfImage (0x${pe.sizeOfImage.toString(16)}): the loader would refuse the image`);
    for (const need of ['.text', '.rdata', '.rsrc']) if (!pe.sections.some((s) => s.name === need)) problems.push(`no ${need} section`);

    const sec = pe.dataDirs[DIR_SECURITY];
    const signature = sec && sec.size > 0 ? { offset: sec.rva, size: sec.size } : null;
    if (signature) {
      // the security directory holds a file offset, not an RVA; after the sections is the only valid place
      const end = Math.max(0, ...byOffset.map((s) => s.rawOffset + s.rawSize));
      if (signature.offset < end || signature.offset + signature.size > fileSize)
        problems.push(
          `the certificate table (offset ${signature.offset}, ${signature.size} bytes) overlaps the sections or runs past the file: a signature left stale by the injection`,
        );
    }

    const res = pe.dataDirs[DIR_RESOURCE];
    if (!res || res.size === 0) throw new Stop('no resource directory (data directory 2 is empty): no blob was injected');
    const rsrc = pe.sections.find((s) => s.name === '.rsrc');
    if (rsrc && !(res.rva >= rsrc.virtualAddress && res.rva < rsrc.virtualAddress + Math.max(rsrc.virtualSize, rsrc.rawSize)))
      problems.push('the resource directory is not in the .rsrc section');
    const base = rvaToOffset(pe.sections, res.rva, 16, 'the resource directory');
    const limit = res.size;
    const types = await resourceDir(fh, fileSize, base, limit, 0);
    const rcdata = types.find((e) => e.id === RT_RCDATA && e.isDir);
    if (!rcdata) throw new Stop(`no RT_RCDATA resources (types: ${types.map((t) => t.name ?? t.id).join(', ')}): no blob was injected`);
    const names = await resourceDir(fh, fileSize, base, limit, rcdata.target);
    const seaEntries = names.filter((e) => e.name === SEA_RESOURCE);
    if (seaEntries.length !== 1 || !seaEntries[0].isDir)
      throw new Stop(
        `${seaEntries.length === 0 ? 'no' : seaEntries.length} RT_RCDATA resource named ${SEA_RESOURCE} (RT_RCDATA holds: ${names.map((n) => n.name ?? `#${n.id}`).join(', ') || 'nothing'})`,
      );
    const langs = await resourceDir(fh, fileSize, base, limit, seaEntries[0].target);
    if (langs.length !== 1 || langs[0].isDir) throw new Stop(`${SEA_RESOURCE} has ${langs.length} language entries, not one data entry`);
    if (langs[0].target + 16 > limit) throw new Stop(`${SEA_RESOURCE}'s data entry lies outside the resource section`);
    const data = await readAt(fh, fileSize, base + langs[0].target, 16, `${SEA_RESOURCE}'s data entry`);
    const dataSize = data.readUInt32LE(4);
    const offset = rvaToOffset(pe.sections, data.readUInt32LE(0), dataSize, `the ${SEA_RESOURCE} blob`);
    problems.push(...(await blobProblems(fh, fileSize, offset, dataSize, blob)));

    const rdata = pe.sections.filter((s) => s.name === '.rdata');
    const states: { state: string; offset: number }[] = [];
    for (const s of rdata) states.push(...(await fuseStates(fh, fileSize, s.rawOffset, s.rawSize, SEA_FUSE)));
    const fp = fuseProblem(states, '.rdata');
    if (fp) problems.push(fp);

    if (problems.length) throw new ExecutableCheckError(path, problems);
    return {
      machine: pe.machine,
      subsystem: pe.subsystem,
      sections: pe.sections,
      blob: { size: dataSize, sha256: blob.sha256, offset },
      fuseOffset: states[0].offset,
      signature,
    };
  } catch (e) {
    if (e instanceof Stop) throw new ExecutableCheckError(path, [...problems, e.message]);
    throw e;
  } finally {
    await fh.close();
  }
}

const EM_X86_64 = 62;
const PT_NOTE = 4;

/**
 * Checks a Linux x64 single executable against the injected blob: ELF64 little-endian x86-64, the
 * blob as a `NODE_SEA_BLOB` note in a PT_NOTE segment, and the fuse flipped in `.rodata`.
 */
export async function checkElf(path: string, blob: Digest): Promise<ElfFacts> {
  const fh = await open(path, 'r');
  const problems: string[] = [];
  try {
    const fileSize = (await fh.stat()).size;
    const h = await readAt(fh, fileSize, 0, 64, 'the ELF header');
    if (!h.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) throw new Stop('no ELF signature at offset 0');
    if (h[4] !== 2 || h[5] !== 1) throw new Stop('not a 64-bit little-endian ELF file');
    const machine = h.readUInt16LE(0x12);
    if (machine !== EM_X86_64) problems.push(`ELF machine ${machine}, not 62 (x86-64)`);
    const phoff = Number(h.readBigUInt64LE(0x20));
    const shoff = Number(h.readBigUInt64LE(0x28));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const shentsize = h.readUInt16LE(0x3a);
    const shnum = h.readUInt16LE(0x3c);
    const shstrndx = h.readUInt16LE(0x3e);
    const ph = await readAt(fh, fileSize, phoff, phentsize * phnum, 'the program headers');
    const want = Buffer.from(`${SEA_RESOURCE}\0`, 'latin1');
    const found: { offset: number; size: number }[] = [];
    for (let i = 0; i < phnum; i++) {
      const p = ph.subarray(i * phentsize, (i + 1) * phentsize);
      if (p.readUInt32LE(0) !== PT_NOTE) continue;
      const off = Number(p.readBigUInt64LE(8));
      const filesz = Number(p.readBigUInt64LE(32));
      // walk the notes by their headers (names and descriptors padded to 4, as Node's lookup does), reading only headers and names
      for (let at = 0; at + 12 <= filesz; ) {
        const nh = await readAt(fh, fileSize, off + at, 12, 'a note header');
        const namesz = nh.readUInt32LE(0);
        const descsz = nh.readUInt32LE(4);
        const name = namesz > 0 && namesz <= 256 ? await readAt(fh, fileSize, off + at + 12, namesz, 'a note name') : Buffer.alloc(0);
        const descAt = at + 12 + Math.ceil(namesz / 4) * 4;
        if (name.equals(want)) found.push({ offset: off + descAt, size: descsz });
        at = descAt + Math.ceil(descsz / 4) * 4;
      }
    }
    if (found.length !== 1) throw new Stop(`${found.length === 0 ? 'no' : found.length} ${SEA_RESOURCE} note(s) in the PT_NOTE segments`);
    problems.push(...(await blobProblems(fh, fileSize, found[0].offset, found[0].size, blob)));

    const sh = await readAt(fh, fileSize, shoff, shentsize * shnum, 'the section headers');
    const sect = (i: number) => sh.subarray(i * shentsize, (i + 1) * shentsize);
    const strs = sect(shstrndx);
    const names = await readAt(fh, fileSize, Number(strs.readBigUInt64LE(0x18)), Number(strs.readBigUInt64LE(0x20)), 'the section names');
    const states: { state: string; offset: number }[] = [];
    let rodata = 0;
    for (let i = 0; i < shnum; i++) {
      const s = sect(i);
      const n = s.readUInt32LE(0);
      if (names.toString('latin1', n, names.indexOf(0, n)) !== '.rodata') continue;
      rodata++;
      states.push(...(await fuseStates(fh, fileSize, Number(s.readBigUInt64LE(0x18)), Number(s.readBigUInt64LE(0x20)), SEA_FUSE)));
    }
    if (rodata === 0) problems.push('no .rodata section');
    const fp = fuseProblem(states, '.rodata');
    if (fp) problems.push(fp);
    if (problems.length) throw new ExecutableCheckError(path, problems);
    return { machine, blob: { size: found[0].size, sha256: blob.sha256, offset: found[0].offset }, fuseOffset: states[0].offset };
  } catch (e) {
    if (e instanceof Stop) throw new ExecutableCheckError(path, [...problems, e.message]);
    throw e;
  } finally {
    await fh.close();
  }
}

/**
 * Removes an Authenticode signature (what `signtool remove /s` does, the step Node's SEA docs give
 * before injecting on Windows): clears the security data directory and cuts the certificate table
 * off the end of the file. Node's official node.exe is signed; postject's rebuilt `.rsrc` is written
 * over that table's bytes, so left in place the directory would point into the resources. The
 * result is unsigned until the release is signed with its own certificate. Returns the bytes removed.
 */
export async function stripPeSignature(path: string): Promise<number> {
  const fh = await open(path, 'r+');
  try {
    const fileSize = (await fh.stat()).size;
    let pe: PeHeaders;
    try {
      pe = await readPeHeaders(fh, fileSize);
    } catch (e) {
      if (e instanceof Stop) throw new ExecutableCheckError(path, [e.message]);
      throw e;
    }
    const sec = pe.dataDirs[DIR_SECURITY];
    if (!sec || sec.size === 0) return 0;
    if (sec.rva + sec.size !== fileSize)
      throw new ExecutableCheckError(path, [
        `its certificate table (offset ${sec.rva}, ${sec.size} bytes) is not at the end of the file (${fileSize} bytes): not stripping a signature laid out unusually`,
      ]);
    const zero = Buffer.alloc(8);
    const { bytesWritten } = await fh.write(zero, 0, 8, pe.dataDirOffset(DIR_SECURITY));
    if (bytesWritten !== 8) throw new Error(`could not clear the security directory of ${path}`);
    await fh.truncate(sec.rva);
    await fh.sync();
    return sec.size;
  } finally {
    await fh.close();
  }
}
