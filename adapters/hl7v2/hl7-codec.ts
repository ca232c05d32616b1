/** The HL7 v2 source codec: parse, resend key, description and the message-type dispatch to mappers. */
import type { MapContext, MapResult, SourceCodec } from '../contracts.ts';
import { parseHl7, type Hl7Message } from './hl7-message.ts';
import { mapAdt } from './map-adt.ts';
import { mapSiu } from './map-siu.ts';
import { mapOru } from './map-oru.ts';
import { mapBar, mapDft } from './map-financial.ts';
import { mapMdm } from './map-mdm.ts';
import type { Hl7MapContext } from './message-mapper.ts';
import { HL7_PROFILES, withOverrides } from './profiles.ts';
import type { Hl7ProfileName } from '../../config/schema.ts';

export const HL7_FORMAT = 'hl7v2';

export interface Hl7CodecOptions {
  profile: Hl7ProfileName;
  timezone: string;
  /** The site's changes to the profile (config `hl7.profileOverrides`). */
  overrides?: Parameters<typeof withOverrides>[1];
}

export function mapHl7(msg: Hl7Message, ctx: Hl7MapContext): MapResult {
  const code = msg.header.messageCode.toUpperCase();
  switch (code) {
    case 'ADT':
      return mapAdt(msg, ctx);
    case 'SIU':
      return mapSiu(msg, ctx);
    case 'ORU':
      return mapOru(msg, ctx);
    case 'DFT':
      return mapDft(msg, ctx);
    case 'BAR':
      return mapBar(msg, ctx);
    case 'MDM':
      return mapMdm(msg, ctx);
    default:
      return { unsupported: `${code}^${msg.header.triggerEvent || '?'}`, records: [], issues: [] };
  }
}

export function createHl7Codec(opts: Hl7CodecOptions): SourceCodec<Hl7Message> {
  const profile = withOverrides(HL7_PROFILES[opts.profile], opts.overrides);
  return {
    format: HL7_FORMAT,
    parse: parseHl7,
    dedupeKey: (m) => `hl7v2|${m.header.sendingApplication}|${m.header.sendingFacility}|${m.header.controlId}`,
    describe: (m) => ({ kind: `${m.header.messageCode}^${m.header.triggerEvent}`, messageId: m.header.controlId }),
    map: (m: Hl7Message, ctx: MapContext) => mapHl7(m, { ...ctx, profile, timezone: opts.timezone }),
  };
}
