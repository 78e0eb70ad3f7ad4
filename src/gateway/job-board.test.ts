import { describe, expect, it } from 'vitest';
import type { CategoryId } from '../../protocol/src/ids.js';
import { createJobBoard, toJobWatch, watchMatches } from './job-board.js';

const design = '11111111-1111-4111-8111-111111111111' as CategoryId;
const software = '22222222-2222-4222-8222-222222222222' as CategoryId;

describe('job board', () => {
  it('matches a category exactly and any one of the watched skills, normalised like REST', () => {
    const watch = toJobWatch({ categoryId: software, skills: ['  React ', 'NODE   js'] });
    expect([...watch.skills]).toEqual(['react', 'node js']);
    expect(watchMatches(watch, { categoryId: software, skills: ['node js', 'postgres'] })).toBe(true);
    expect(watchMatches(watch, { categoryId: software, skills: ['postgres'] })).toBe(false);
    expect(watchMatches(watch, { categoryId: design, skills: ['react'] })).toBe(false);
    // No skills watched: any skills (none included); no category: any category.
    expect(watchMatches(toJobWatch({ categoryId: software }), { categoryId: software, skills: [] })).toBe(
      true,
    );
    expect(watchMatches(toJobWatch({ skills: [' ', ''] }), { categoryId: design, skills: [] })).toBe(true);
    expect(watchMatches(toJobWatch({ skills: ['figma'] }), { categoryId: design, skills: ['figma'] })).toBe(
      true,
    );
  });

  it('keeps one watch per connection: a new one replaces it, unwatch and close drop it', () => {
    const board = createJobBoard<string>();
    board.watch('a', toJobWatch({ categoryId: software }));
    board.watch('b', toJobWatch({}));
    board.watch('c', toJobWatch({ categoryId: design, skills: ['figma'] }));
    const softwareJob = { categoryId: software, skills: ['react'] };
    expect(board.watchersOf(softwareJob).sort()).toEqual(['a', 'b']);
    // Replaced, not added: 'a' now watches design only.
    board.watch('a', toJobWatch({ categoryId: design }));
    expect(board.size()).toBe(3);
    expect(board.watchersOf(softwareJob)).toEqual(['b']);
    expect(board.watchersOf({ categoryId: design, skills: ['figma'] }).sort()).toEqual(['a', 'b', 'c']);
    board.unwatch('b');
    board.unwatch('b');
    board.unwatch('nobody');
    expect(board.watchersOf(softwareJob)).toEqual([]);
    expect(board.size()).toBe(2);
  });
});
