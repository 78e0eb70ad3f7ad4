/**
 * Mergeable latency histogram: fixed log-linear buckets over microseconds (64 linear buckets below
 * 64 µs, then 64 sub-buckets per power of two, so any recorded value is within ~1.6 % of its
 * bucket). Two histograms merge by summing counts, which is how worker processes' figures are
 * combined in the parent. Serialized sparsely for IPC and the results JSON.
 */

const SUB_BITS = 6;
const SUB_COUNT = 1 << SUB_BITS; // 64
/** Values are clamped to 2^31 - 1 µs (~36 min). */
const MAX_VALUE = 0x7fffffff;
const BUCKETS = SUB_COUNT + (31 - SUB_BITS) * SUB_COUNT;

/** The wire/JSON form: sparse [bucketIndex, count] pairs plus exact count, sum and max. */
export interface HistogramData {
  readonly buckets: ReadonlyArray<readonly [number, number]>;
  readonly count: number;
  readonly sumUs: number;
  readonly maxUs: number;
}

function bucketOf(valueUs: number): number {
  const v = Math.min(MAX_VALUE, Math.max(0, Math.round(valueUs)));
  if (v < SUB_COUNT) return v;
  const exponent = 31 - Math.clz32(v); // >= SUB_BITS
  const shift = exponent - SUB_BITS;
  return SUB_COUNT + shift * SUB_COUNT + ((v >>> shift) - SUB_COUNT);
}

/** The middle of a bucket's value range, in µs. */
function bucketValue(index: number): number {
  if (index < SUB_COUNT) return index;
  const shift = Math.floor((index - SUB_COUNT) / SUB_COUNT);
  const sub = (index - SUB_COUNT) % SUB_COUNT;
  const low = (SUB_COUNT + sub) * 2 ** shift;
  return low + (2 ** shift - 1) / 2;
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sumUs = 0;
  #maxUs = 0;

  static from(data: HistogramData): Histogram {
    const histogram = new Histogram();
    histogram.merge(data);
    return histogram;
  }

  get count(): number {
    return this.#count;
  }

  recordUs(valueUs: number): void {
    const index = bucketOf(valueUs);
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.#count += 1;
    this.#sumUs += valueUs;
    if (valueUs > this.#maxUs) this.#maxUs = valueUs;
  }

  recordMs(valueMs: number): void {
    this.recordUs(valueMs * 1000);
  }

  merge(other: Histogram | HistogramData): void {
    const data = other instanceof Histogram ? other.toData() : other;
    for (const [index, count] of data.buckets) {
      this.#counts[index] = (this.#counts[index] ?? 0) + count;
    }
    this.#count += data.count;
    this.#sumUs += data.sumUs;
    if (data.maxUs > this.#maxUs) this.#maxUs = data.maxUs;
  }

  /** The value at quantile q (0..1), in µs; null when empty. */
  quantileUs(q: number): number | null {
    if (this.#count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index += 1) {
      seen += this.#counts[index] ?? 0;
      if (seen >= rank) return Math.min(bucketValue(index), this.#maxUs);
    }
    return this.#maxUs;
  }

  quantileMs(q: number): number | null {
    const us = this.quantileUs(q);
    return us === null ? null : us / 1000;
  }

  maxMs(): number | null {
    return this.#count === 0 ? null : this.#maxUs / 1000;
  }

  toData(): HistogramData {
    const buckets: Array<readonly [number, number]> = [];
    for (let index = 0; index < BUCKETS; index += 1) {
      const count = this.#counts[index] ?? 0;
      if (count > 0) buckets.push([index, count]);
    }
    return { buckets, count: this.#count, sumUs: this.#sumUs, maxUs: this.#maxUs };
  }
}
