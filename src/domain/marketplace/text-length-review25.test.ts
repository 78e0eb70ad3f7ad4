import { describe, expect, it } from 'vitest';
import { SubmitReviewRequest } from '../../../protocol/src/rest/reviews.js';
import { Skill } from '../../../protocol/src/rest/skills.js';
import { checkReviewInput } from './reviews.js';
import { checkSkills, firstChars } from './rules.js';

// The edges count characters as code points (zod's `.max`), so must the domain: an emoji is one.
describe('text lengths in characters, as the edges count them (review 25)', () => {
  it('takes a review of 2 000 characters, emoji included, that the REST schema accepted', () => {
    const text = `${'👍'.repeat(1500)}${'x'.repeat(500)}`; // 2 000 characters, 3 500 UTF-16 units
    const body = SubmitReviewRequest.parse({ rating: 5, text });
    expect(checkReviewInput(body)).toBeNull();
    expect(checkReviewInput({ rating: 5, text: `${text}!` })?.code).toBe('VALIDATION_FAILED');
  });

  it('takes a job skill of 50 characters that a worker profile takes', () => {
    const skill = Skill.parse('🐍'.repeat(50));
    expect(checkSkills([skill])).toBeNull();
    expect(checkSkills(['🐍'.repeat(51)])?.code).toBe('VALIDATION_FAILED');
  });

  it('cuts a note or a room title at a number of characters, never inside an emoji', () => {
    const title = `a${'🎨'.repeat(199)}`; // 200 characters, 399 UTF-16 units
    expect(firstChars(title, 200)).toBe(title);
    expect(firstChars(`${title}b`, 200)).toBe(title);
  });
});
