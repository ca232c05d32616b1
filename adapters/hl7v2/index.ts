import { defineSource } from '../contracts.ts';
import { createHl7Codec } from './hl7-codec.ts';
import { createMllpListener } from './mllp-listener.ts';
export { createMllpListener, type MllpListener, type MllpListenerOptions } from './mllp-listener.ts';
export { ackFor, acceptFor, answersFor } from './ack-policy.ts';
export { createMllpFramer, frameMllp, type MllpFramer } from './mllp-framer.ts';
export { createHl7Codec, mapHl7, HL7_FORMAT, type Hl7CodecOptions } from './hl7-codec.ts';
export { withOverrides } from './profiles.ts';
export { parseHl7, escapeHl7, unescapeHl7, splitSegments, type Hl7Message, type Hl7Segment, type Delimiters } from './hl7-message.ts';
export { buildAck, salvageHeader, type AckCode } from './ack-builder.ts';
export { decodeHl7Bytes } from './hl7-charset.ts';
export { HL7_PROFILES, type Hl7Profile } from './profiles.ts';
export { splitHl7Messages } from './hl7-batch.ts';
export { connectMllp, readAck, type MllpClient } from './mllp-client.ts';
export { createMllpSender, controlIdOf, type MllpSender, type SendResult } from './mllp-sender.ts';

/** The `hl7` source kind: the MLLP listener (when enabled), and the HL7 codec every HL7 input uses (listener, HL7 files, replays). */
export const hl7Sources = defineSource({
  kind: 'hl7v2',
  section: 'hl7',
  create(hl7, deps) {
    const codec = createHl7Codec({ profile: hl7.profile, timezone: deps.timezone, overrides: hl7.profileOverrides });
    return { codecs: [codec], adapters: hl7.enabled ? [createMllpListener({ ...hl7, now: deps.now })] : [] };
  },
});
