/**
 * Which HL7 v3 XML a file holds, from its root element (CDA document or v3 message, both XML ITS
 * in the `urn:hl7-org:v3` namespace), and an XML file's bytes as text by the XML rules. No XML
 * parser here: the file source asks this of every `.xml` file it sees, and loads a parser only for
 * the files that need one.
 */
import { TextDecoder } from 'node:util';
import { CodecError } from '../contracts.ts';

export const V3_NAMESPACE = 'urn:hl7-org:v3';

/** The two kinds of HL7 v3 XML the gateway maps: a CDA document, and a v3 patient-administration message. */
export const XmlDocumentFormat = { cda: 'cda', hl7v3: 'hl7v3' } as const;
export type XmlDocumentFormat = (typeof XmlDocumentFormat)[keyof typeof XmlDocumentFormat];

export interface RootElement {
  /** The local name (`ClinicalDocument`, `PRPA_IN201301UV02`). */
  local: string;
  /** The namespace the root's prefix (or the default namespace) is bound to on the root tag. */
  namespace: string | undefined;
  /** A DOCTYPE came before it. */
  doctype: boolean;
}

const NAME = /^<([A-Za-z_][\w.-]*)(?::([A-Za-z_][\w.-]*))?((?:\s[^>]*)?)\/?>/;

/** The root element's name and namespace, read past the prolog (declaration, comments, PIs, DOCTYPE). */
export function readRootElement(head: string): RootElement | undefined {
  let i = head.charCodeAt(0) === 0xfeff ? 1 : 0;
  let doctype = false;
  for (let guard = 0; guard < 10_000; guard++) {
    while (i < head.length && (head[i] === ' ' || head[i] === '\n' || head[i] === '\r' || head[i] === '\t')) i++;
    if (head.startsWith('<?', i)) {
      const end = head.indexOf('?>', i + 2);
      if (end < 0) return undefined;
      i = end + 2;
    } else if (head.startsWith('<!--', i)) {
      const end = head.indexOf('-->', i + 4);
      if (end < 0) return undefined;
      i = end + 3;
    } else if (head.startsWith('<!DOCTYPE', i)) {
      doctype = true;
      const open = head.indexOf('[', i);
      const close = head.indexOf('>', i);
      // an internal subset ([...]) may hold '>' of its own declarations
      const end = open >= 0 && open < close ? head.indexOf('>', head.indexOf(']', open)) : close;
      if (end < 0) return undefined;
      i = end + 1;
    } else break;
  }
  const m = NAME.exec(head.slice(i, i + 16_384));
  if (!m) return undefined;
  const prefix = m[2] ? m[1] : undefined;
  const local = m[2] ?? m[1];
  const decl = prefix
    ? new RegExp(`(?:^|\\s)xmlns:${prefix.replace(/[.-]/g, '\\$&')}\\s*=\\s*(["'])(.*?)\\1`)
    : /(?:^|\s)xmlns\s*=\s*(["'])(.*?)\1/;
  const ns = decl.exec(m[3]);
  return { local, namespace: ns ? ns[2] : undefined, doctype };
}

/** A v3 patient-administration interaction the gateway maps or knows (PRPA_IN2013xxUV02). */
const PRPA_ROOT = /^PRPA_IN2013\d\dUV\d\d$/;

/**
 * Which HL7 v3 XML a file's first characters hold: `cda` for a `ClinicalDocument` in the v3
 * namespace, `hl7v3` for a PRPA_IN2013xx patient-registry interaction (in the v3 namespace, or
 * none declared, as some senders write it); undefined for any other XML or text.
 */
export function detectXmlDocument(head: string): XmlDocumentFormat | undefined {
  const root = readRootElement(head);
  if (!root) return undefined;
  if (root.local === 'ClinicalDocument') return root.namespace === V3_NAMESPACE ? 'cda' : undefined;
  if (PRPA_ROOT.test(root.local) && (root.namespace === V3_NAMESPACE || root.namespace === undefined)) return 'hl7v3';
  return undefined;
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/**
 * An XML file's bytes as text, by XML 1.0 appendix F: a BOM (UTF-8, UTF-16LE/BE) or UTF-16's
 * `<?` pattern, else the declaration's `encoding` (UTF-8 when there is none). A BOM is dropped.
 * Throws a CodecError on bytes that are not text of that encoding (the document is kept as
 * received, so it is not repaired).
 */
export function decodeXmlBytes(bytes: Uint8Array): string {
  let encoding = 'utf-8';
  let start = 0;
  if (UTF8_BOM.every((b, k) => bytes[k] === b)) start = 3;
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) [encoding, start] = ['utf-16le', 2];
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) [encoding, start] = ['utf-16be', 2];
  else if (bytes[0] === 0x3c && bytes[1] === 0 && bytes[2] === 0x3f && bytes[3] === 0) encoding = 'utf-16le';
  else if (bytes[0] === 0 && bytes[1] === 0x3c && bytes[2] === 0 && bytes[3] === 0x3f) encoding = 'utf-16be';
  else {
    const decl = /^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(Buffer.from(bytes.subarray(0, 256)).toString('latin1'));
    if (decl) encoding = decl[1].toLowerCase();
  }
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(encoding, { fatal: true, ignoreBOM: true });
  } catch {
    throw new CodecError(`the XML declaration names an unknown encoding (${encoding.slice(0, 40)})`);
  }
  try {
    return decoder.decode(bytes.subarray(start));
  } catch {
    throw new CodecError(`the document is not valid ${encoding} text`);
  }
}
