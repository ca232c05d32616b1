/**
 * Splits a file into messages: HL7 batch files (FHS/BHS … BTS/FTS, chapter 2.10.3) and files of
 * bare messages one after the other. Envelope segments are dropped; every MSH starts a message.
 */
import { splitSegments } from './hl7-message.ts';

export function splitHl7Messages(text: string): string[] {
  const lines = splitSegments(text.replace(/^\uFEFF/, ''));
  const out: string[] = [];
  let cur: string[] = [];
  for (const line of lines) {
    const name = line.slice(0, 3);
    if (name === 'FHS' || name === 'BHS' || name === 'BTS' || name === 'FTS') continue;
    if (name === 'MSH' && cur.length) {
      out.push(cur.join('\r'));
      cur = [];
    }
    cur.push(line);
  }
  if (cur.length) out.push(cur.join('\r'));
  return out;
}
