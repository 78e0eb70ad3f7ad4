/**
 * Skills, one rule for both places they are typed: a worker's profile (PATCH /v1/me) and a job
 * (POST/PATCH /v1/jobs). A worker's skills are matched against the skills jobs ask for, so they
 * share one cap: they used to be 40 characters on profiles and 50 on jobs.
 *
 * Skills are stored lower case (src/domain/marketplace/rules.ts `normalizeSkills`), and lower-casing
 * can lengthen a string ("İ", U+0130, becomes "i" + U+0307, two characters): the cap is checked on
 * the lower-case form, the one stored, as well as on the text sent. A skill has no comma: lists
 * of skills are comma-separated (a job search's `?skills=`, the web app's forms).
 */
import { singleLineText } from './text.js';

/** Most characters (code points) of one skill, as stored (trimmed, NFC, lower case). */
export const MAX_SKILL_LENGTH = 50;
/** Most skills of one worker or one job. */
export const MAX_SKILLS = 30;

const TOO_LONG = `must be at most ${MAX_SKILL_LENGTH} characters in lower case`;

/** One skill: single-line text, stored lower case, at most MAX_SKILL_LENGTH once lower-cased. */
export const Skill = singleLineText({ min: 1, max: MAX_SKILL_LENGTH })
  .toLowerCase()
  .max(MAX_SKILL_LENGTH, { error: TOO_LONG })
  // A job search names skills comma-separated (`?skills=ui,ux`): a skill with a comma was stored
  // but no search could ever find it (review 22c). Stored ones still read (responses are strings).
  .regex(/^[^,]*$/, { error: 'must not contain a comma (a list of skills is comma-separated)' });
