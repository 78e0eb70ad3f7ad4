import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { multiLineText, singleLineText, TEXT_MESSAGES } from './text.js';

const single = singleLineText({ min: 1, max: 80 });
const multi = multiLineText({ min: 1, max: 2000 });

/** The messages of a refused value (empty when accepted). */
const messagesOf = (schema: z.ZodType, value: unknown): string[] => {
  const result = schema.safeParse(value);
  return result.success ? [] : result.error.issues.map((issue) => issue.message);
};

const accepted = (schema: z.ZodType, value: string): unknown => {
  const result = schema.safeParse(value);
  expect(result.success, `${JSON.stringify(value)}: ${JSON.stringify(result.error?.issues)}`).toBe(true);
  return result.data;
};

/** Every C0 and C1 control and DEL, by code point. */
const controls = [
  ...Array.from({ length: 0x20 }, (_, i) => i),
  ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i),
].map((code) => String.fromCharCode(code));

describe('singleLineText', () => {
  it('refuses every C0/C1 control character, wherever trimming leaves it', () => {
    for (const control of controls) {
      for (const value of [`a${control}b`, `${control}ab`, `ab${control}`]) {
        const result = single.safeParse(value);
        // At either end, the whitespace controls (tab, line feed, VT, FF, CR) are trimmed away.
        if (result.success) {
          expect(/\s/u.test(control), JSON.stringify(value)).toBe(true);
          expect(result.data).toBe('ab');
          continue;
        }
        const messages = result.error.issues.map((issue) => issue.message);
        expect(
          messages.includes(TEXT_MESSAGES.control) || messages.includes(TEXT_MESSAGES.singleLine),
          JSON.stringify(value),
        ).toBe(true);
      }
      const inside = messagesOf(single, `a${control}b`);
      expect(inside.length, JSON.stringify(control)).toBe(1);
    }
    expect(messagesOf(single, 'evil\u0007')).toEqual([TEXT_MESSAGES.control]);
    expect(messagesOf(single, 'a\tb')).toEqual([TEXT_MESSAGES.control]);
    expect(messagesOf(single, 'a\u0085b')).toEqual([TEXT_MESSAGES.control]);
    expect(messagesOf(single, 'a\u001b[31mred')).toEqual([TEXT_MESSAGES.control]);
  });

  it('refuses line breaks, including U+2028 and U+2029: a header or log line cannot be forged', () => {
    for (const value of ['a\nb', 'a\r\nX-Injected: 1', 'a\rb', 'a\u2028b', 'a\u2029b']) {
      expect(messagesOf(single, value), JSON.stringify(value)).toEqual([TEXT_MESSAGES.singleLine]);
    }
    expect(messagesOf(single, '\u0001\bctl\r\nX-Injected: 1')).toEqual([
      TEXT_MESSAGES.singleLine,
      TEXT_MESSAGES.control,
    ]);
  });

  it('refuses bidi embedding, override and isolate controls', () => {
    for (const code of [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]) {
      const value = `invoice${String.fromCharCode(code)}gpj.exe`;
      expect(messagesOf(single, value), code.toString(16)).toEqual([TEXT_MESSAGES.direction]);
    }
    expect(messagesOf(single, '\u202Eevil\u0007')).toEqual([TEXT_MESSAGES.control, TEXT_MESSAGES.direction]);
    // Nothing visible either: every rule broken is named.
    expect(messagesOf(single, '\u202E\u0007')).toEqual([
      TEXT_MESSAGES.control,
      TEXT_MESSAGES.direction,
      TEXT_MESSAGES.invisible,
    ]);
  });

  it('refuses a value made only of whitespace and invisible characters', () => {
    for (const value of [
      '\u200B',
      '\u200B\uFEFF',
      '\u200B\u200C\u200D',
      '\u2060',
      ' \u00A0\u3000 \u200B ',
      '\u3164',
      '\u115F\u1160',
      '\uFE0F',
      '\u2800',
      '\u200E\u200F',
    ]) {
      expect(messagesOf(single, value), JSON.stringify(value)).toEqual([TEXT_MESSAGES.invisible]);
    }
  });

  it('with min 1, refuses empty and whitespace-only values after trimming', () => {
    // U+FEFF counts as whitespace for String.prototype.trim, so it is trimmed away too.
    for (const value of ['', '   ', '\u00A0\u3000', '\uFEFF', ' \n\t ']) {
      expect(messagesOf(single, value), JSON.stringify(value)).toEqual([TEXT_MESSAGES.empty]);
    }
  });

  it('with min 0, allows empty but still refuses invisible-only values', () => {
    const optional = singleLineText({ max: 10 });
    expect(accepted(optional, '')).toBe('');
    expect(accepted(optional, '   ')).toBe('');
    expect(messagesOf(optional, '\u200B')).toEqual([TEXT_MESSAGES.invisible]);
  });

  it('accepts emoji (ZWJ sequences, skin tones, flags, keycaps), RTL scripts, accents, CJK', () => {
    for (const value of [
      'Ada Lovelace',
      '👩‍💻 Ada',
      '👨‍👩‍👧‍👦',
      '🏳️‍🌈 pride',
      '👍🏽',
      '🇵🇹 Lisboa',
      '1️⃣ first',
      'مرحبا بالعالم',
      'שלום עולם',
      'نامه‌ای', // ZWNJ inside Persian
      'Ada (עברית) mixed',
      'Zoë Saldaña',
      '東京都 渋谷区',
      '한국어',
      'नमस्ते',
      'a\u200Bb', // a zero-width space inside visible text is left alone
      'C# / C++ & <script>',
    ]) {
      expect(accepted(single, value)).toBe(value);
    }
  });

  it('keeps the implicit direction marks LRM, RLM and ALM', () => {
    expect(accepted(single, 'abc\u200F!')).toBe('abc\u200F!');
    expect(accepted(single, '\u061Cمرحبا')).toBe('\u061Cمرحبا');
  });

  it('trims and normalises to NFC, and checks the length after both', () => {
    expect(accepted(single, '  Zoe\u0308  ')).toBe('Zoë');
    expect(accepted(single, 'e\u0301')).toBe('\u00E9');
    expect(accepted(single, '\u1100\u1161')).toBe('\uAC00'); // conjoining jamo → one syllable
    const short = singleLineText({ min: 1, max: 3 });
    // Five code units decomposed, three composed: fits after normalisation.
    expect(accepted(short, 'a\u0301e\u0301c')).toBe('\u00E1\u00E9c');
    expect(messagesOf(short, 'abcd')).toHaveLength(1);
    expect(accepted(short, '   abc   ')).toBe('abc');
  });

  it('is a plain string schema: chains, composes and stays representable in JSON Schema', () => {
    expect(singleLineText({ min: 1, max: 40 }).toLowerCase().parse('  TypeScript ')).toBe('typescript');
    const schema = z.object({
      name: singleLineText({ min: 1, max: 80 }).nullable(),
      note: singleLineText({ max: 200 }).optional(),
    });
    expect(schema.parse({ name: null })).toEqual({ name: null });
    expect(z.toJSONSchema(schema, { io: 'input' }).properties).toEqual({
      name: { anyOf: [{ type: 'string', minLength: 1, maxLength: 80 }, { type: 'null' }] },
      note: { type: 'string', maxLength: 200 },
    });
  });

  it('refuses non-strings', () => {
    for (const value of [1, null, undefined, {}, ['a']]) expect(single.safeParse(value).success).toBe(false);
  });
});

describe('multiLineText', () => {
  it('keeps tab, line feed and carriage return inside the text', () => {
    const text = 'Hello,\r\n\tI can start on Monday.\n\nRegards';
    expect(accepted(multi, text)).toBe(text);
  });

  it('refuses every other C0/C1 control character', () => {
    for (const control of controls.filter((c) => !['\t', '\n', '\r'].includes(c))) {
      expect(messagesOf(multi, `a${control}b`), JSON.stringify(control)).toEqual([TEXT_MESSAGES.control]);
    }
    expect(messagesOf(multi, 'ring\u0007')).toEqual([TEXT_MESSAGES.control]);
  });

  it('trims, and refuses whitespace-only (empty after trim) and invisible-only values', () => {
    expect(messagesOf(multi, '   ')).toEqual([TEXT_MESSAGES.empty]);
    expect(messagesOf(multi, '\n\t\r\n')).toEqual([TEXT_MESSAGES.empty]);
    expect(messagesOf(multi, '\u200B\n\uFEFF')).toEqual([TEXT_MESSAGES.invisible]);
    expect(accepted(multi, '\n  Line one\nLine two  \n')).toBe('Line one\nLine two');
  });

  it('accepts emoji, RTL paragraphs, accents and CJK, normalised to NFC', () => {
    for (const value of [
      'Great work 👩‍🔧👍🏿',
      'عمل رائع\nشكرا',
      'עבודה מצוינת',
      '非常好的工作',
      'Très bien',
    ]) {
      expect(accepted(multi, value)).toBe(value);
    }
    expect(accepted(multi, 'Tre\u0300s bien')).toBe('Très bien');
  });

  it('keeps a default of "" when absent', () => {
    const letter = z.object({ coverLetter: multiLineText({ max: 5000 }).default('') });
    expect(letter.parse({})).toEqual({ coverLetter: '' });
    expect(letter.parse({ coverLetter: '  hi ' })).toEqual({ coverLetter: 'hi' });
  });
});
