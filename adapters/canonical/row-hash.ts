/**
 * A polled source row's content, as text and as a hash: the same row always gives the same text
 * (binary as hex, 64-bit integers as text), so an unchanged row re-read hashes the same and a
 * changed one does not. The hash is part of the row's record ids: each version is its own record.
 */
import { hash } from 'node:crypto';

export function rowJson(data: Record<string, unknown>): string {
  // most rows hold only text, numbers and nulls: no replacer needed (faster: see BENCHMARKS.md, "Measured design choices")
  let plain = true;
  for (const k in data) {
    const v = data[k];
    if ((v !== null && typeof v === 'object') || typeof v === 'bigint') {
      plain = false;
      break;
    }
  }
  if (plain) return JSON.stringify(data);
  return JSON.stringify(data, function (this: unknown, _k, v: unknown) {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data))
      return Buffer.from((v as { data: number[] }).data).toString('hex');
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    return v;
  });
}

export function rowHash(data: Record<string, unknown>): string {
  return hashRowJson(rowJson(data));
}

/** `rowHash` of a row whose `rowJson` text the caller has already (it measures the row by it, say). */
export function hashRowJson(json: string): string {
  return hash('sha256', json, 'base64url');
}
