/**
 * Review 28: If-Match uses the strong comparison (RFC 9110 §13.1.1), so a weak tag never matches.
 * `W/"3"` was read as version 3 and let a change through; now it stands for a version no resource
 * has, so the domain's comparison answers 409 VERSION_MISMATCH with the current version.
 */
import { describe, expect, it } from 'vitest';
import { ifMatchVersion, requiredIfMatchVersion, WEAK_TAG_VERSION } from './jobs.js';

describe('a weak entity tag in If-Match', () => {
  it('never matches any version, optional or required', () => {
    for (const header of ['W/"0"', 'W/"3"', ' W/"12" ', 'W/7']) {
      expect(ifMatchVersion(header), header).toBe(WEAK_TAG_VERSION);
      expect(requiredIfMatchVersion(header, 'bid'), header).toBe(WEAK_TAG_VERSION);
    }
    expect(WEAK_TAG_VERSION).toBeLessThan(0);
  });

  it('leaves strong tags, bare versions and * as they were', () => {
    expect(ifMatchVersion('"0"')).toBe(0);
    expect(ifMatchVersion('"3"')).toBe(3);
    expect(ifMatchVersion('12')).toBe(12);
    expect(ifMatchVersion('*')).toBeUndefined();
  });
});
