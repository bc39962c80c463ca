/** Runs the in-process MongoDB-compatible server in its own process for benchmarks; prints {"uri":...}. */
import { InProcessMongoServer } from '../../src/database/in-process-mongo/in-process-mongo.server';

void InProcessMongoServer.start().then((server) => process.stdout.write(`${JSON.stringify({ uri: server.uri })}\n`));
