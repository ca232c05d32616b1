/**
 * Decodes the bytes of one HL7 message according to MSH-18 (HL7 table 0211). The MSH segment is
 * ASCII in every charset we accept, so it is read from the raw bytes first.
 */
const LATIN1 = new Set(['8859/1', 'ISO-8859-1', 'ISO8859-1', 'ISO_IR 100']);
const ASCII = new Set(['ASCII', 'ISO_IR 6']);

/** The MSH-18 value of a raw message, or '' when absent or unreadable. */
export function peekCharset(bytes: Buffer): string {
  let start = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  while (start < bytes.length && (bytes[start] === 0x0d || bytes[start] === 0x0a || bytes[start] === 0x20)) start++;
  if (bytes.toString('latin1', start, start + 3) !== 'MSH') return '';
  let end = start;
  const limit = Math.min(bytes.length, start + 4096);
  while (end < limit && bytes[end] !== 0x0d && bytes[end] !== 0x0a) end++;
  const msh = bytes.toString('latin1', start, end);
  const sep = msh.charAt(3);
  if (!sep) return '';
  const fields = msh.split(sep);
  // fields[0] = 'MSH', fields[1] = MSH-2, so MSH-n is fields[n - 1]
  const v = fields[17] ?? '';
  const rep = msh.charAt(5);
  return (rep ? v.split(rep)[0] : v).trim().toUpperCase();
}

/** Bytes → text: UTF-8 unless MSH-18 names Latin-1 or ASCII. A UTF-8 BOM is dropped. */
export function decodeHl7Bytes(bytes: Buffer): string {
  const cs = peekCharset(bytes);
  if (LATIN1.has(cs)) return bytes.toString('latin1');
  if (ASCII.has(cs)) return bytes.toString('latin1');
  const text = bytes.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Text → bytes for a message we send, in the charset its MSH-18 names. */
export function encodeHl7Text(text: string, charset: string | undefined): Buffer {
  const cs = (charset ?? '').toUpperCase();
  if (LATIN1.has(cs) || ASCII.has(cs)) return Buffer.from(text, 'latin1');
  return Buffer.from(text, 'utf8');
}
