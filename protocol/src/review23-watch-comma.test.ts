/**
 * Review 23: REST refuses a skill with a comma (a list of skills is comma-separated, so no job can
 * ask for one), but `jobs.watch` took `["react,node"]`: a watch that silently never matched. Now it
 * is VALIDATION_FAILED at `d.skills.N`, like a blank skill.
 */
import { describe, expect, it } from 'vitest';
import { createCodec, type DecodeResult } from './codec.js';
import type { ClientFrame } from './frames.js';

const codec = createCodec();
const watch = (skills: unknown) => JSON.stringify({ t: 'jobs.watch', id: 4, d: { skills } });

const outcome = (result: DecodeResult<ClientFrame>) =>
  result.ok ? { ok: true } : { code: result.code, paths: result.errors?.map((e) => e.path) };

describe('a skill with a comma in jobs.watch', () => {
  it('is refused at d.skills.N', () => {
    expect(outcome(codec.decodeClient(watch(['react,node']), 'json'))).toEqual({
      code: 'VALIDATION_FAILED',
      paths: ['d.skills.0'],
    });
    expect(outcome(codec.decodeClient(watch(['ux', 'ui, ux']), 'json'))).toEqual({
      code: 'VALIDATION_FAILED',
      paths: ['d.skills.1'],
    });
  });

  it('leaves skills without one as they were', () => {
    expect(outcome(codec.decodeClient(watch(['react', 'node.js', 'c++']), 'json'))).toEqual({ ok: true });
  });
});
