/** The HL7 v2 codec against the SourceCodec contract, with synthetic messages of recognisable values. */
import { createHl7Codec } from '../../adapters/hl7v2/hl7-codec.ts';
import type { SourceCodec } from '../../adapters/contracts.ts';
import { adtA04, siu } from '../support/hl7-fixtures.ts';
import { sourceCodecContract } from './source-codec-contract.ts';

const phi = { mrn: 'MRN7734219', family: 'Quillfeather', birth: '19620714' };
const adt = adtA04({ id: 'CODEC-ADT-1', mrn: phi.mrn, family: phi.family }).replace('19800101', phi.birth);
const adt2 = adtA04({ id: 'CODEC-ADT-2', mrn: phi.mrn, family: phi.family, in1: true });
const appt = siu({ id: 'CODEC-SIU-1', mrn: phi.mrn });

sourceCodecContract({
  name: 'HL7 v2 codec',
  codec: createHl7Codec({ profile: 'generic', timezone: 'America/Chicago' }) as SourceCodec<unknown>,
  samples: [adt, adt2, appt],
  phi: [phi.mrn, phi.family, phi.birth, '1 Test Way', '555-0100'],
  garbage: ['PID|1||X', 'MSH|^~\\&|', 'EVN|A04\rPID|1'],
  dedupes: true,
});
