/**
 * Fastify vs Express under the same Nest app: a JSON GET and a validated JSON POST,
 * measured with autocannon at 50 connections. Prints requests/s and latency per adapter.
 *   npx ts-node -T bench/adapter-choice.ts   (or: node -r @swc/register ...; see bench/README)
 */
import 'reflect-metadata';
import { Body, Controller, Get, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import autocannon from 'autocannon';
import { IsInt, IsString, Max, Min } from 'class-validator';
import { createValidationPipe } from '../src/common/validation.pipe';

class GenerateDto {
  @IsString() prompt!: string;
  @IsString() userId!: string;
  @IsInt() @Min(1) @Max(10) complexity!: number;
}

@Controller()
class BenchController {
  @Get('ping')
  ping() {
    return { status: 'ok', totalTokens: 15750, requestCount: 42 };
  }

  @Post('echo')
  echo(@Body() dto: GenerateDto) {
    return { result: dto.prompt.length, tokenUsage: { totalTokens: 450, requestCount: 1 } };
  }
}

@Module({ controllers: [BenchController] })
class BenchModule {}

async function measure(name: string, adapter: ExpressAdapter | FastifyAdapter) {
  const app = await NestFactory.create(BenchModule, adapter, { logger: false });
  app.useGlobalPipes(createValidationPipe());
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  const run = (opts: Partial<autocannon.Options>) =>
    autocannon({ url, connections: 50, duration: 8, ...opts } as autocannon.Options);
  await run({ url: `${url}/ping`, duration: 2 }); // warm-up
  const get = await run({ url: `${url}/ping` });
  const post = await run({
    url: `${url}/echo`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Create a plugin that teleports players', userId: 'user123', complexity: 7 }),
  });
  await app.close();
  return { name, get, post };
}

async function main() {
  const results = [await measure('fastify', new FastifyAdapter()), await measure('express', new ExpressAdapter())];
  for (const { name, get, post } of results) {
    console.log(
      `${name.padEnd(8)} GET  ${get.requests.average.toFixed(0).padStart(6)} req/s  p50 ${get.latency.p50} ms  p99 ${get.latency.p99} ms | ` +
        `POST ${post.requests.average.toFixed(0).padStart(6)} req/s  p50 ${post.latency.p50} ms  p99 ${post.latency.p99} ms`,
    );
  }
  const [fastify, express] = results;
  console.log(
    `fastify/express throughput ratio: GET ${(fastify.get.requests.average / express.get.requests.average).toFixed(2)}x, ` +
      `POST ${(fastify.post.requests.average / express.post.requests.average).toFixed(2)}x`,
  );
}

void main();
