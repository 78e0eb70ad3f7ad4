import { describe, expect, it } from 'vitest';
import { ifMatchVersion } from './jobs.js';

describe('ifMatchVersion', () => {
  it('reads a quoted or bare version, and * as no condition', () => {
    expect(ifMatchVersion('"3"')).toBe(3);
    expect(ifMatchVersion('7')).toBe(7);
    expect(ifMatchVersion('*')).toBeUndefined();
    expect(ifMatchVersion(undefined)).toBeUndefined();
  });

  it('refuses half-quoted, listed or non-numeric versions with VALIDATION_FAILED', () => {
    for (const header of ['"3', '3"', 'W/"3', '"3", "4"', '"abc"', '""', '"1234567890"', 'W/3x']) {
      expect(() => ifMatchVersion(header), header).toThrow(
        expect.objectContaining({ code: 'VALIDATION_FAILED' }),
      );
    }
  });
});
