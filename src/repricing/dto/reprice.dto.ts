import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsDate, IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { USER_ID_PATTERN } from '../../common/user-id';

/** POST /api/usage/reprice */
export class RepriceRequestDto {
  @ApiProperty({ example: '2026-11-01T00:00:00Z', description: 'Start of the period, inclusive (ISO 8601)' })
  @Type(() => Date)
  @IsDate({ message: 'from must be an ISO 8601 date' })
  from!: Date;

  @ApiProperty({ example: '2026-12-01T00:00:00Z', description: 'End of the period, exclusive (ISO 8601)' })
  @Type(() => Date)
  @IsDate({ message: 'to must be an ISO 8601 date' })
  to!: Date;

  @ApiPropertyOptional({ example: 'user123', description: 'Only this user' })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: `userId must match ${USER_ID_PATTERN.source}` })
  userId?: string;

  @ApiPropertyOptional({ example: 'gpt-4o', description: 'Only events of this model (as recorded)' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  model?: string;

  @ApiPropertyOptional({ default: true, description: 'Report the before/after difference without changing anything' })
  @IsOptional()
  @IsBoolean({ message: 'dryRun must be true or false' })
  dryRun: boolean = true;
}

export class RepriceDifferenceDto {
  @ApiProperty({ example: 12 }) events!: number;
  @ApiProperty({ example: 150000, description: 'Integer micro-USD before' }) beforeMicros!: number;
  @ApiProperty({ example: 75000, description: 'Integer micro-USD after' }) afterMicros!: number;
  @ApiProperty({ example: -75000, description: 'after - before, integer micro-USD' }) deltaMicros!: number;
  @ApiProperty({ example: -0.075, description: 'USD (display)' }) deltaUsd!: number;
}

export class RepriceUserDifferenceDto extends RepriceDifferenceDto {
  @ApiProperty({ example: 'user123', nullable: true, type: String, description: 'null: calls made for no user' }) userId!: string | null;
}

export class RepriceModelDifferenceDto extends RepriceDifferenceDto {
  @ApiProperty({ example: 'gpt-4o' }) model!: string;
}

export class RepriceReportDto {
  @ApiProperty({ example: true }) dryRun!: boolean;
  @ApiProperty({ example: '2026-11-01T00:00:00.000Z' }) from!: string;
  @ApiProperty({ example: '2026-12-01T00:00:00.000Z' }) to!: string;
  @ApiProperty({ example: 'catalog 2026-12-06.1', description: 'Our catalogue version the new prices come from' }) catalogVersion!: string;
  @ApiProperty({ example: 40, description: 'Events priced by a price list in the period (provider-reported costs, tool calls and cache hits are never re-priced)' }) examined!: number;
  @ApiProperty({ example: 12, description: 'Events whose cost or cost source changes' }) changed!: number;
  @ApiProperty({ example: 28 }) unchanged!: number;
  @ApiProperty({ example: 0, description: 'Priced events no price list knows any more: left as they are' }) leftPriced!: number;
  @ApiProperty({ example: 0, description: 'Events another run changed first' }) conflicts!: number;
  @ApiProperty({ example: 0, description: 'Half-done re-pricings of an earlier interrupted run, completed first' }) resumed!: number;
  @ApiProperty({
    example: 0,
    description: 'Changed events recorded before events kept their cached/reasoning token counts: priced as if the whole prompt was uncached input',
  })
  withoutBreakdown!: number;
  @ApiProperty({ type: RepriceDifferenceDto }) total!: RepriceDifferenceDto;
  @ApiProperty({ type: [RepriceUserDifferenceDto] }) users!: RepriceUserDifferenceDto[];
  @ApiProperty({ type: [RepriceModelDifferenceDto] }) models!: RepriceModelDifferenceDto[];
}
