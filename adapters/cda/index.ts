import type { SourceCodec } from '../contracts.ts';
import { defineSource } from '../contracts.ts';
import { createCdaCodec } from './cda-document.ts';
import { createHl7v3Codec } from './hl7v3-message.ts';
import type { XmlDocumentFormat } from './xml-root.ts';

export {
  CDA_FORMAT,
  createCdaCodec,
  mapCdaBase64,
  mapCdaDocument,
  mapParsedCda,
  parseCdaDocument,
  type CdaDocument,
  type V3MapContext,
} from './cda-document.ts';
export {
  HL7V3_FORMAT,
  Hl7v3Interaction,
  createHl7v3Codec,
  mapHl7v3Message,
  mapParsedHl7v3,
  parseHl7v3Message,
  type Hl7v3Message,
} from './hl7v3-message.ts';
export { decodeXmlBytes, detectXmlDocument, readRootElement, V3_NAMESPACE, XmlDocumentFormat } from './xml-root.ts';

/** Both HL7 v3 XML codecs by format, for a reader that picked the format from the content (`detectXmlDocument`). */
export function createXmlDocumentCodecs(o: { timezone: string }): Record<XmlDocumentFormat, SourceCodec<unknown>> {
  return { cda: createCdaCodec(o) as SourceCodec<unknown>, hl7v3: createHl7v3Codec(o) as SourceCodec<unknown> };
}

/**
 * The HL7 v3 XML codecs (CDA documents, PRPA patient messages) for the pipeline: files of these
 * formats go through `ctx.intake` (adapters/file/file-import.ts), so their dead letters replay
 * through the same codecs. They read no config of their own; `files` is the section that brings
 * such documents in. No adapters: the file, SFTP and FHIR sources read the documents.
 */
export const hl7v3Sources = defineSource({
  kind: 'hl7v3',
  section: 'files',
  create(_files, deps) {
    return { codecs: Object.values(createXmlDocumentCodecs({ timezone: deps.timezone })) };
  },
});
