/**
 * Test file order: longest first, so the 2-core CI box does not end a run with one long file on one
 * worker while the others sit idle. Vitest orders by the durations it cached from earlier runs, but a
 * clean clone has none (it then runs project by project, larger files first): this order comes from
 * `test/file-durations.json` (seconds per file, from a run's report: `npm run -s test:durations`),
 * and a file not in it counts as 10 s (new files are mostly short). Unit files run after every
 * integration file.
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const DURATIONS_FILE = resolve(import.meta.dirname, '../file-durations.json');
const UNKNOWN_SECONDS = 10;

function recordedDurations(): Map<string, number> {
  try {
    const recorded = JSON.parse(readFileSync(DURATIONS_FILE, 'utf8')) as Record<string, number>;
    return new Map(Object.entries(recorded));
  } catch {
    return new Map();
  }
}

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const durations = recordedDurations();
    const root = this.ctx.config.root;
    const seconds = (spec: TestSpecification) =>
      durations.get(relative(root, spec.moduleId)) ?? UNKNOWN_SECONDS;
    // Unit files (beside the code) last, all together: they take ~10 s in all, fill the gaps the
    // last integration files leave, and a worker switches project (a new fork) once, not per file.
    const isUnit = (spec: TestSpecification) => !relative(root, spec.moduleId).startsWith('test/');
    // Stable: ties keep Vitest's own order.
    const byVitest = await super.sort(files);
    return byVitest
      .map((spec, index) => ({ spec, index, unit: isUnit(spec) ? 1 : 0, seconds: seconds(spec) }))
      .sort((a, b) => a.unit - b.unit || b.seconds - a.seconds || a.index - b.index)
      .map(({ spec }) => spec);
  }
}
