/**
 * What of a server's OperationOutcome reaches /status and the logs: its severity and issue type,
 * each only as a value of its FHIR R4 value set (anything else is `other`), never its text.
 */
import { describe, expect, it } from 'vitest';
import { outcomeCodes } from '../../../adapters/http/http-error.ts';

const oo = (...issue: unknown[]) => ({ resourceType: 'OperationOutcome', issue });

describe('OperationOutcome codes', () => {
  it('keeps a known severity and issue type as they are', () => {
    expect(
      outcomeCodes(
        oo(
          { severity: 'error', code: 'not-found', diagnostics: 'Patient Jane Doe DOB 1970-01-01' },
          { severity: 'fatal', code: 'exception' },
          { severity: 'warning', code: 'throttled' },
          { severity: 'information', code: 'informational' },
          { severity: 'error', code: 'multiple-matches' },
          { severity: 'error', code: 'code-invalid' },
        ),
      ),
    ).toEqual([
      'error:not-found',
      'fatal:exception',
      'warning:throttled',
      'information:informational',
      'error:multiple-matches',
      'error:code-invalid',
    ]);
  });

  it('maps a severity or code outside its value set, or not a string, to other', () => {
    expect(
      outcomeCodes(
        oo(
          { severity: 'error', code: 'Patient Jane Doe not found' },
          { severity: 'Jane Doe', code: 'processing' },
          { severity: 'ERROR', code: 'Not-Found' },
          { severity: 3, code: { text: 'x' } },
          {},
          null,
        ),
      ),
    ).toEqual(['error:other', 'other:processing', 'other:other', 'other:other', 'other:other', 'other:other']);
  });

  it('reads at most 10 issues, and nothing from what is not an OperationOutcome', () => {
    expect(outcomeCodes(oo(...Array.from({ length: 12 }, () => ({ severity: 'error', code: 'value' }))))).toHaveLength(10);
    expect(outcomeCodes({ resourceType: 'Bundle', issue: [{ severity: 'error', code: 'value' }] })).toEqual([]);
    expect(outcomeCodes(undefined)).toEqual([]);
  });
});
