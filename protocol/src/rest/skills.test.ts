import { describe, expect, it } from 'vitest';
import { CreateJobRequest } from './jobs.js';
import { MAX_SKILL_LENGTH, Skill } from './skills.js';
import { UpdateMeRequest } from './users.js';

describe('Skill', () => {
  it('is stored lower case and capped at MAX_SKILL_LENGTH', () => {
    expect(Skill.parse('  TypeScript ')).toBe('typescript');
    expect(Skill.safeParse('x'.repeat(MAX_SKILL_LENGTH)).success).toBe(true);
    expect(Skill.safeParse('x'.repeat(MAX_SKILL_LENGTH + 1)).success).toBe(false);
  });

  it('checks the cap on the lower-case form: "İ" lower-cases to two UTF-16 code units', () => {
    const dotted = 'İ'.repeat(Math.floor(MAX_SKILL_LENGTH / 2) + 1);
    expect(dotted.length).toBeLessThan(MAX_SKILL_LENGTH);
    expect(Skill.safeParse(dotted).success).toBe(false);
    expect(Skill.safeParse('İ'.repeat(MAX_SKILL_LENGTH / 2)).success).toBe(true);
  });

  it('is the same for worker skills and job skills', () => {
    const skill = 'y'.repeat(MAX_SKILL_LENGTH);
    expect(UpdateMeRequest.safeParse({ skills: [skill] }).success).toBe(true);
    expect(CreateJobRequest.shape.skills.safeParse([skill]).success).toBe(true);
    expect(UpdateMeRequest.safeParse({ skills: [`${skill}y`] }).success).toBe(false);
    expect(CreateJobRequest.shape.skills.safeParse([`${skill}y`]).success).toBe(false);
  });
});
