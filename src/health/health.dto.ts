import { ApiProperty } from '@nestjs/swagger';

export class LivenessDto {
  @ApiProperty({ example: 'ok' }) status!: 'ok';
  @ApiProperty({ example: 3600 }) uptimeSeconds!: number;
}

export class DependencyStateDto {
  @ApiProperty({ example: 'up', enum: ['up', 'down'] }) status!: 'up' | 'down';
  @ApiProperty({ example: 'in-process MongoDB-compatible server at mongodb://127.0.0.1:41234/' }) detail!: string;
  @ApiProperty({ example: 2, required: false }) latencyMs?: number;
}

export class OutboxStateDto {
  @ApiProperty({ example: 0, description: 'Usage records waiting in the durable outbox for the ledger (MongoDB) to accept them' })
  records!: number;
  @ApiProperty({ example: 0, description: 'Bytes of those records on disk' }) bytes!: number;
  @ApiProperty({ example: null, nullable: true, type: String, format: 'date-time', description: 'When the oldest waiting record was queued' })
  oldestQueuedAt!: string | null;
  @ApiProperty({ example: null, nullable: true, type: Number, description: 'Age of the oldest waiting record in seconds' })
  oldestAgeSeconds!: number | null;
}

export class ReadinessDto {
  @ApiProperty({ example: 'ok', enum: ['ok', 'degraded'] }) status!: 'ok' | 'degraded';
  @ApiProperty({ type: DependencyStateDto }) mongodb!: DependencyStateDto;
  @ApiProperty({ type: DependencyStateDto, description: 'Reported, not required: without Redis the rolling window is disabled' })
  redis!: DependencyStateDto;
  @ApiProperty({ type: OutboxStateDto, description: 'Ledger writes that failed and are waiting for replay; drains by itself once MongoDB is back' })
  outbox!: OutboxStateDto;
}
