/**
 * Free text that people type and other people read: names, titles, notes, bios, descriptions.
 * json-value.ts only keeps out what breaks storage (U+0000, lone surrogates); these builders keep
 * out what deceives readers or breaks the places the text is shown (a mail subject, a log line, a
 * one-line list entry):
 *
 * - C0 and C1 control characters (a bell, a backspace, ESC sequences for terminals, a CR LF that
 *   forges a header or a log line). Multi-line text keeps tab, line feed and carriage return.
 * - Single-line text also refuses line and paragraph separators (U+2028, U+2029) and the bidi
 *   embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069), which reorder what
 *   follows them on screen ("\u202Egpj.exe" shows as "exe.jpg"). Right-to-left scripts need none
 *   of them; the implicit marks U+200E, U+200F and U+061C stay allowed.
 * - A non-empty value made only of whitespace and invisible characters (format characters such as
 *   U+200B or U+FEFF, other default-ignorable code points such as the Hangul fillers, the blank
 *   braille pattern): an invisible name or title. Invisible characters inside visible text stay —
 *   the zero-width joiner of an emoji sequence, the zero-width non-joiner of Persian.
 *
 * Both trim and normalise to NFC first (composed and decomposed "é" are one value for uniqueness
 * checks, search and length limits), then check lengths in characters (Unicode code points) as `z.string()` in zod 4 does.
 * The result is a plain ZodString, so callers chain `.nullable()`, `.optional()`, `.default()` or
 * `.toLowerCase()`, and the OpenAPI document shows it as a string with minLength and maxLength.
 */
import { z } from 'zod';

export interface TextBounds {
  /** Fewest characters (code points) after trimming; default 0 (an empty string is allowed). */
  readonly min?: number;
  /** Most characters (code points) after trimming and normalising. */
  readonly max: number;
}

/** Line feed, carriage return and the Unicode line and paragraph separators. */
const LINE_BREAK = /[\n\r\u2028\u2029]/u;
/**
 * C0 and C1 controls and DEL (general category Cc: U+0000–U+001F, U+007F–U+009F), line feed and
 * carriage return aside (LINE_BREAK names those).
 */
const CONTROL_EXCEPT_LINE_BREAKS = /(?![\n\r])\p{Cc}/u;
/** C0 and C1 controls and DEL except tab, line feed and carriage return. */
const CONTROL_EXCEPT_LAYOUT = /(?![\t\n\r])\p{Cc}/u;
/** Bidi embeddings and overrides (LRE RLE PDF LRO RLO) and isolates (LRI RLI FSI PDI). */
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069]/u;
/**
 * One character that shows something: not whitespace, not a control or format character, not
 * default-ignorable (variation selectors, Hangul fillers, U+034F), not the blank braille pattern.
 */
const VISIBLE = /[^\s\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\u2800]/u;

export const TEXT_MESSAGES = {
  empty: 'must not be empty',
  singleLine: 'must be a single line (no line breaks)',
  control: 'must not contain control characters',
  direction: 'must not contain text-direction controls',
  invisible: 'must contain visible characters',
} as const;

function bounded({ min = 0, max }: TextBounds): z.ZodString {
  const text = z.string().normalize('NFC').trim();
  const atLeast =
    min === 0
      ? text
      : text.min(min, { error: min === 1 ? TEXT_MESSAGES.empty : `must be at least ${min} characters` });
  return atLeast.max(max);
}

/** An empty value is left to `min`; a non-empty one must show at least one character. */
const showsSomething = (value: string) => value === '' || VISIBLE.test(value);

/** A name, title, label, skill or short note: one line, no controls, no bidi controls. */
export function singleLineText(bounds: TextBounds): z.ZodString {
  return bounded(bounds)
    .refine((value) => !LINE_BREAK.test(value), { error: TEXT_MESSAGES.singleLine })
    .refine((value) => !CONTROL_EXCEPT_LINE_BREAKS.test(value), { error: TEXT_MESSAGES.control })
    .refine((value) => !BIDI_CONTROL.test(value), { error: TEXT_MESSAGES.direction })
    .refine(showsSomething, { error: TEXT_MESSAGES.invisible });
}

/** A bio, description, cover letter or review: tab and line breaks allowed, other controls not. */
export function multiLineText(bounds: TextBounds): z.ZodString {
  return bounded(bounds)
    .refine((value) => !CONTROL_EXCEPT_LAYOUT.test(value), { error: TEXT_MESSAGES.control })
    .refine(showsSomething, { error: TEXT_MESSAGES.invisible });
}
