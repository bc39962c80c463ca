/**
 * In-process vector search: query latency (p50/p95) of VectorMatrix.nearest over one user's
 * chunks, the memory the matrix takes, and the cold load of a matrix from MongoDB (the
 * in-process server) through the same query ResourceChunksService runs.
 *   node -r @swc-node/register bench/vector-search.ts
 * Dimensions: 1536 is text-embedding-3-small's and also the simulated provider's
 * (HASHED_EMBEDDING_DIMENSIONS); 3072 (text-embedding-3-large) is shown for scale.
 */
import { Binary, MongoClient } from 'mongodb';
import { performance } from 'node:perf_hooks';
import { HASHED_EMBEDDING_DIMENSIONS } from '../src/ai/hashed-embedding';
import { InProcessMongoServer } from '../src/database/in-process-mongo/in-process-mongo.server';
import { VectorMatrix, VectorMatrixBuilder } from '../src/search/vector-matrix';

const LIMIT = 5;
/** What the vector part of a search may take at p95 (the event loop is blocked meanwhile). */
const BUDGET_MS = 50;
const CHUNKS_PER_RESOURCE = 100;

/** Deterministic pseudo-random numbers (mulberry32), so runs are comparable. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomVector(next: () => number, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  for (let i = 0; i < dimensions; i++) vector[i] = next() * 2 - 1;
  return vector;
}

/** Build time counts the builder only (normalising and copying rows), not making up the vectors. */
function buildMatrix(count: number, dimensions: number): { matrix: VectorMatrix; buildMs: number } {
  const next = random(count + dimensions);
  const builder = new VectorMatrixBuilder(dimensions, count);
  let buildMs = 0;
  for (let i = 0; i < count; i++) {
    const vector = randomVector(next, dimensions);
    const started = performance.now();
    builder.add({ id: String(i), resourceId: `res_${Math.floor(i / CHUNKS_PER_RESOURCE)}`, chunkIndex: i % CHUNKS_PER_RESOURCE }, vector);
    buildMs += performance.now() - started;
  }
  const started = performance.now();
  const matrix = builder.build();
  return { matrix, buildMs: buildMs + performance.now() - started };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

function measureQueries(matrix: VectorMatrix, queries: number, resourceIds?: string[]): { p50: number; p95: number } {
  const next = random(7);
  const timings: number[] = [];
  for (let i = 0; i < queries + 5; i++) {
    const query = randomVector(next, matrix.dimensions);
    const started = performance.now();
    const hits = matrix.nearest(query, LIMIT, resourceIds);
    const elapsed = performance.now() - started;
    if (hits.length !== LIMIT) throw new Error('short result');
    if (i >= 5) timings.push(elapsed); // the first few warm the JIT up
  }
  timings.sort((a, b) => a - b);
  return { p50: percentile(timings, 50), p95: percentile(timings, 95) };
}

async function coldLoad(count: number, dimensions: number): Promise<{ insertMs: number; loadMs: number }> {
  const server = await InProcessMongoServer.start();
  const client = await MongoClient.connect(server.uri, { directConnection: true });
  try {
    const chunks = client.db('bench').collection('resource_chunks');
    await chunks.createIndex({ userId: 1, model: 1, resourceId: 1, chunkIndex: 1 });
    const next = random(3);
    let started = performance.now();
    for (let offset = 0; offset < count; offset += 1000) {
      await chunks.insertMany(
        Array.from({ length: Math.min(1000, count - offset) }, (_, i) => ({
          userId: 'bench-user',
          resourceId: `res_${Math.floor((offset + i) / CHUNKS_PER_RESOURCE)}`,
          model: 'bench-model',
          chunkIndex: (offset + i) % CHUNKS_PER_RESOURCE,
          generation: 1,
          text: 'x',
          tokens: 1,
          embedding: Binary.fromFloat32Array(randomVector(next, dimensions)),
          dimensions,
        })),
      );
    }
    const insertMs = performance.now() - started;
    started = performance.now();
    const builder = new VectorMatrixBuilder(dimensions, await chunks.countDocuments({ userId: 'bench-user', model: 'bench-model' }));
    const cursor = chunks
      .find({ userId: 'bench-user', model: 'bench-model' }, { projection: { resourceId: 1, chunkIndex: 1, embedding: 1 } })
      .sort({ resourceId: 1, chunkIndex: 1 })
      .batchSize(1000);
    for await (const chunk of cursor) {
      builder.add({ id: String(chunk._id), resourceId: chunk.resourceId as string, chunkIndex: chunk.chunkIndex as number }, (chunk.embedding as Binary).toFloat32Array());
    }
    builder.build();
    return { insertMs, loadMs: performance.now() - started };
  } finally {
    await client.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const dimensions = [...new Set([1536, HASHED_EMBEDDING_DIMENSIONS, 3072])];
  const sizes = [10_000, 25_000, 50_000, 100_000];
  console.log(`Brute-force cosine top-${LIMIT} over one user's chunks (Node ${process.version}, one core)`);
  console.log(`1536 dims = text-embedding-3-small = the simulated provider (HASHED_EMBEDDING_DIMENSIONS=${HASHED_EMBEDDING_DIMENSIONS})\n`);
  console.log('dims   chunks   matrix    build      p50        p95        p50 (1 resource of 100 chunks)');
  const withinBudget = new Map<number, number>();
  for (const dims of dimensions) {
    for (const count of sizes) {
      if (dims === 3072 && count > 50_000) continue;
      const { matrix, buildMs } = buildMatrix(count, dims);
      const all = measureQueries(matrix, count >= 50_000 ? 40 : 200);
      const one = measureQueries(matrix, 200, ['res_3']);
      if (all.p95 <= BUDGET_MS) withinBudget.set(dims, Math.max(withinBudget.get(dims) ?? 0, count));
      console.log(
        `${String(dims).padEnd(6)} ${String(count).padStart(7)}  ${mb(matrix.bytes).padStart(7)}  ${ms(buildMs).padStart(9)}  ${ms(all.p50).padStart(9)}  ${ms(all.p95).padStart(9)}  ${ms(one.p50).padStart(9)}`,
      );
    }
  }
  console.log(`\nprocess RSS after the runs: ${mb(process.memoryUsage().rss)} (matrices are freed between rows)`);
  for (const dims of dimensions) {
    const largest = withinBudget.get(dims);
    console.log(`${dims} dims: p95 within ${BUDGET_MS} ms ${largest ? `up to ${largest} chunks per user (of those measured)` : 'at none of the sizes measured'}`);
  }

  console.log('\nCold load of one user\'s matrix from MongoDB (in-process server, 1536 dims): the cost of the first search after a change');
  for (const count of [10_000, 50_000]) {
    const { insertMs, loadMs } = await coldLoad(count, 1536);
    console.log(`${String(count).padStart(7)} chunks: load ${ms(loadMs)} (inserting them took ${ms(insertMs)})`);
  }
}

void main();
