/** Which HL7 v3 XML a file holds, from its root element; and XML bytes to text by the XML rules. */
import { describe, expect, it } from 'vitest';
import { decodeXmlBytes, detectXmlDocument } from '../../../adapters/cda/index.ts';
import { CodecError } from '../../../adapters/contracts.ts';
import { fixture } from './support.ts';

describe('detectXmlDocument', () => {
  it('names a v3 ClinicalDocument cda, with or without a prefix, past a declaration, comments and a stylesheet PI', () => {
    expect(detectXmlDocument(fixture('eye-exam-consult-note.xml'))).toBe('cda');
    expect(
      detectXmlDocument(
        '\uFEFF<?xml version="1.0"?>\n<?xml-stylesheet href="CDA.xsl"?>\n<!-- a -->\n<ClinicalDocument xmlns="urn:hl7-org:v3">',
      ),
    ).toBe('cda');
    expect(
      detectXmlDocument('<cda:ClinicalDocument xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cda="urn:hl7-org:v3">'),
    ).toBe('cda');
  });

  it('names PRPA_IN2013xx roots hl7v3', () => {
    expect(detectXmlDocument(fixture('prpa-in201301uv02-add.xml'))).toBe('hl7v3');
    expect(detectXmlDocument(fixture('prpa-in201302uv02-revise.xml'))).toBe('hl7v3');
    expect(detectXmlDocument(fixture('prpa-in201304uv02-merge.xml'))).toBe('hl7v3');
    expect(detectXmlDocument('<PRPA_IN201301UV02 ITSVersion="XML_1.0">')).toBe('hl7v3');
  });

  it('does not detect other XML: an export, a ClinicalDocument outside the v3 namespace, its namespace on another prefix, a PRPA root of another namespace', () => {
    expect(detectXmlDocument('<?xml version="1.0"?><Export><EWSpecRx/></Export>')).toBeUndefined();
    expect(detectXmlDocument('<ClinicalDocument><id/></ClinicalDocument>')).toBeUndefined();
    expect(detectXmlDocument('<ClinicalDocument xmlns="urn:example:other">')).toBeUndefined();
    expect(detectXmlDocument('<x:ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:x="urn:example">')).toBeUndefined();
    expect(detectXmlDocument('<PRPA_IN201301UV02 xmlns="urn:example">')).toBeUndefined();
    expect(detectXmlDocument('<MCCI_IN000002UV01 xmlns="urn:hl7-org:v3">')).toBeUndefined();
    expect(detectXmlDocument('MSH|^~\\&|')).toBeUndefined();
    expect(detectXmlDocument('<!-- never closed')).toBeUndefined();
  });
});

describe('decodeXmlBytes', () => {
  const doc =
    '<?xml version="1.0" encoding="ISO-8859-1"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>Examen de la vue é</title></ClinicalDocument>';

  it('reads UTF-8 (a BOM dropped), UTF-16 by its BOM, and the encoding the declaration names', () => {
    const utf8 = '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>−1.25 DS é</title></ClinicalDocument>';
    expect(decodeXmlBytes(Buffer.from(utf8, 'utf8'))).toBe(utf8);
    expect(decodeXmlBytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(utf8, 'utf8')]))).toBe(utf8);
    expect(decodeXmlBytes(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(utf8, 'utf16le')]))).toBe(utf8);
    expect(decodeXmlBytes(Buffer.from(doc, 'latin1'))).toBe(doc);
  });

  it('refuses bytes that are not text of their encoding, and unknown encodings, with a CodecError', () => {
    expect(() => decodeXmlBytes(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0xfe, 0xfd, 0x3c, 0x2f, 0x61, 0x3e, 0x00, 0xc3]))).toThrow(CodecError);
    expect(() => decodeXmlBytes(Buffer.from('<?xml version="1.0" encoding="x-no-such"?><a/>'))).toThrow(
      'the XML declaration names an unknown encoding (x-no-such)',
    );
  });
});
