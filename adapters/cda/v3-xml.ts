/**
 * Parsing HL7 v3 XML (CDA R2 documents and v3 messages, XML ITS) with fast-xml-parser into plain
 * element objects, and reading them.
 *
 * The parse drops namespace prefixes (`cda:id` and `id` are one element; `sdtc:deceasedInd` reads
 * as `deceasedInd`): the header elements the mappers read are all in the v3 namespace or its SDTC
 * extension, whose names don't clash. A DOCTYPE is refused: neither CDA nor the v3 XML ITS uses
 * one, and its entities are the way to a billion-laughs document.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { CodecError } from '../contracts.ts';
import { readRootElement, type RootElement } from './xml-root.ts';

/**
 * One parsed element: child elements under their local name, always as lists (`'#text'`-only
 * children given as strings are turned into `{ '#text': s }` by {@link elements}), attributes as
 * `@name` strings, character content as `#text`.
 */
export type XmlElement = { readonly [key: string]: unknown };

/** A parsed v3 XML document: its root element, named. */
export interface V3Xml {
  root: RootElement;
  element: XmlElement;
}

/**
 * Parses one whole v3 XML document. Throws a CodecError, naming only the XML rule broken and
 * where (line, column), never the content: a malformed document, a DOCTYPE, or no single root.
 */
export function parseV3Xml(text: string): V3Xml {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const root = readRootElement(body);
  if (!root) throw new CodecError('not an XML document: no root element');
  if (root.doctype) throw new CodecError('an XML document with a DOCTYPE is not accepted (HL7 v3 XML has none)');
  const valid = XMLValidator.validate(body);
  if (valid !== true) throw new CodecError(`not well-formed XML (${valid.err.code} at line ${valid.err.line}, column ${valid.err.col})`);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    removeNSPrefix: true,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    processEntities: true,
    // numeric character references (&#233;) are decoded with these
    htmlEntities: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    isArray: (_name, _path, _leaf, isAttribute) => !isAttribute,
  });
  const doc = parser.parse(body) as Record<string, unknown>;
  const names = Object.keys(doc);
  if (names.length !== 1 || names[0] !== root.local) throw new CodecError('not well-formed XML: one root element is expected');
  return { root, element: elements(doc, root.local)[0] };
}

/** A parent's child elements of one local name (none when absent). */
export function elements(parent: XmlElement | undefined, name: string): XmlElement[] {
  const v = parent?.[name];
  if (!Array.isArray(v)) return [];
  return v.map((x) => (typeof x === 'string' ? { '#text': x } : (x as XmlElement)));
}

/** The first element down a path of local names (`element(doc, 'recordTarget', 'patientRole')`). */
export function element(parent: XmlElement | undefined, ...path: string[]): XmlElement | undefined {
  let cur = parent;
  for (const p of path) cur = elements(cur, p)[0];
  return cur;
}

/** Every element down a path of local names, in document order. */
export function elementsAt(parent: XmlElement | undefined, ...path: string[]): XmlElement[] {
  let cur = parent ? [parent] : [];
  for (const p of path) cur = cur.flatMap((x) => elements(x, p));
  return cur;
}

/** An attribute's value, trimmed; undefined when absent or blank. */
export function attr(el: XmlElement | undefined, name: string): string | undefined {
  const v = el?.[`@${name}`];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** An element's character content, trimmed; undefined when there is none. */
export function textOf(el: XmlElement | undefined): string | undefined {
  const v = el?.['#text'];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}
