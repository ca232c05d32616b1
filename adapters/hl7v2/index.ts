export { createMllpListener, ackFor, type MllpListener, type MllpListenerOptions } from './mllp-listener.ts';
export { createMllpFramer, frameMllp, type MllpFramer } from './mllp-framer.ts';
export { createHl7Codec, mapHl7, HL7_FORMAT, type Hl7CodecOptions } from './hl7-codec.ts';
export { parseHl7, escapeHl7, unescapeHl7, splitSegments, type Hl7Message, type Hl7Segment, type Delimiters } from './hl7-message.ts';
export { buildAck, salvageHeader, type AckCode } from './ack-builder.ts';
export { decodeHl7Bytes } from './hl7-charset.ts';
export { HL7_PROFILES, type Hl7Profile } from './profiles.ts';
export { splitHl7Messages } from './hl7-batch.ts';
export { connectMllp, readAck, type MllpClient } from './mllp-client.ts';
