export interface MatrixRow {
  /** The chunk's id (for fetching its text). */
  id: string;
  resourceId: string;
  chunkIndex: number;
}

export interface MatrixHit {
  row: MatrixRow;
  /** Cosine similarity, -1..1. */
  score: number;
}

/** The vector scaled to length 1 (a zero vector stays zero and scores 0 against everything). */
export function unitVector(vector: ArrayLike<number>): Float32Array {
  let norm = 0;
  for (let i = 0; i < vector.length; i++) norm += vector[i] * vector[i];
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  const unit = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) unit[i] = vector[i] * scale;
  return unit;
}

/** Rows are added one at a time (streamed from MongoDB) into one growing Float32Array. */
export class VectorMatrixBuilder {
  private data: Float32Array;
  private readonly rows: MatrixRow[] = [];

  constructor(
    readonly dimensions: number,
    expectedRows = 0,
  ) {
    this.data = new Float32Array(Math.max(1, expectedRows) * dimensions);
  }

  get count(): number {
    return this.rows.length;
  }

  add(row: MatrixRow, vector: ArrayLike<number>): void {
    if (vector.length !== this.dimensions) {
      throw new RangeError(`chunk ${row.id} has ${vector.length} dimensions where the matrix has ${this.dimensions}`);
    }
    const offset = this.rows.length * this.dimensions;
    if (offset + this.dimensions > this.data.length) {
      const grown = new Float32Array(Math.max(this.data.length * 2, offset + this.dimensions));
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(unitVector(vector), offset);
    this.rows.push(row);
  }

  /** Rows arriving out of resource order are regrouped so each resource's rows are contiguous. */
  build(): VectorMatrix {
    const { dimensions, rows } = this;
    const used = rows.length * dimensions;
    const groups = new Map<string, number[]>();
    rows.forEach((row, index) => {
      const group = groups.get(row.resourceId);
      if (group) group.push(index);
      else groups.set(row.resourceId, [index]);
    });
    const order = [...groups.values()].flat();
    if (order.every((index, position) => index === position)) {
      return new VectorMatrix(dimensions, rows, this.data.length === used ? this.data : this.data.slice(0, used));
    }
    const data = new Float32Array(used);
    order.forEach((from, to) => data.set(this.data.subarray(from * dimensions, (from + 1) * dimensions), to * dimensions));
    return new VectorMatrix(dimensions, order.map((index) => rows[index]), data);
  }
}

/**
 * One user's chunk vectors as a row-major Float32Array of unit vectors, so cosine
 * similarity is a dot product. Rows of one resource are contiguous, so a search limited
 * to some resources scans only their rows.
 */
export class VectorMatrix {
  private readonly spans = new Map<string, { start: number; end: number }>();

  constructor(
    readonly dimensions: number,
    private readonly rows: readonly MatrixRow[],
    private readonly data: Float32Array,
  ) {
    for (let index = 0; index < rows.length; index++) {
      const { resourceId } = rows[index];
      const span = this.spans.get(resourceId);
      if (!span) this.spans.set(resourceId, { start: index, end: index + 1 });
      else if (span.end === index) span.end++;
      else throw new RangeError(`rows of resource ${resourceId} are not contiguous`);
    }
  }

  static empty(dimensions = 0): VectorMatrix {
    return new VectorMatrix(dimensions, [], new Float32Array(0));
  }

  get count(): number {
    return this.rows.length;
  }

  get bytes(): number {
    return this.data.byteLength;
  }

  /**
   * The `limit` rows most similar to `query` (which needs no normalising), best first;
   * equal scores keep row order. `resourceIds` limits the scan to those resources' rows.
   */
  nearest(query: ArrayLike<number>, limit: number, resourceIds?: Iterable<string>): MatrixHit[] {
    if (this.rows.length === 0 || limit <= 0) return [];
    if (query.length !== this.dimensions) {
      throw new RangeError(`the query has ${query.length} dimensions where the stored vectors have ${this.dimensions}`);
    }
    const unit = unitVector(query);
    const spans = resourceIds === undefined
      ? [{ start: 0, end: this.rows.length }]
      : [...new Set(resourceIds)].flatMap((id) => this.spans.get(id) ?? []).sort((a, b) => a.start - b.start);

    const size = Math.min(limit, this.rows.length);
    const bestScores = new Float64Array(size).fill(-Infinity);
    const bestRows = new Int32Array(size).fill(-1);
    let filled = 0;
    const { data, dimensions } = this;
    const blocked = dimensions - (dimensions % 4);
    for (const { start, end } of spans) {
      for (let row = start; row < end; row++) {
        const offset = row * dimensions;
        // Four running sums let the JIT overlap the multiply-adds.
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let i = 0;
        for (; i < blocked; i += 4) {
          s0 += data[offset + i] * unit[i];
          s1 += data[offset + i + 1] * unit[i + 1];
          s2 += data[offset + i + 2] * unit[i + 2];
          s3 += data[offset + i + 3] * unit[i + 3];
        }
        for (; i < dimensions; i++) s0 += data[offset + i] * unit[i];
        const score = s0 + s1 + s2 + s3;
        if (filled === size && score <= bestScores[size - 1]) continue;
        let position = filled < size ? filled++ : size - 1;
        while (position > 0 && bestScores[position - 1] < score) {
          bestScores[position] = bestScores[position - 1];
          bestRows[position] = bestRows[position - 1];
          position--;
        }
        bestScores[position] = score;
        bestRows[position] = row;
      }
    }
    return Array.from({ length: filled }, (_, index) => ({ row: this.rows[bestRows[index]], score: bestScores[index] }));
  }
}
