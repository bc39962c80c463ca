import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsDate, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { UsageFilterQueryDto } from './search-token-usage.dto';
import { UsageEventDto } from './usage-event.dto';

const toBoolean = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

/** GET /api/v1/usage-events */
export class UsageEventsQueryDto extends UsageFilterQueryDto {
  @ApiPropertyOptional({ example: 'openrouter' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  provider?: string;

  @ApiPropertyOptional({ example: 'FREE' })
  @IsOptional()
  @Matches(/^[A-Z][A-Z0-9_]{0,31}$/, { message: 'tier must match ^[A-Z][A-Z0-9_]{0,31}$' })
  tier?: string;

  @ApiPropertyOptional({ example: true, type: Boolean })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean({ message: 'success must be true or false' })
  success?: boolean;

  @ApiPropertyOptional({ example: '2026-05-01T00:00:00Z', description: 'Inclusive (ISO 8601)' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'from must be an ISO 8601 date' })
  from?: Date;

  @ApiPropertyOptional({ example: '2026-06-01T00:00:00Z', description: 'Exclusive (ISO 8601)' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'to must be an ISO 8601 date' })
  to?: Date;

  @ApiPropertyOptional({ example: 100, default: 100, minimum: 1, maximum: 5000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(5000)
  limit: number = 100;

  @ApiPropertyOptional({ description: 'next_cursor (JSON) or x-next-cursor (CSV) of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  cursor?: string;
}

export class UsageEventsPageDto {
  @ApiProperty({ type: [UsageEventDto], description: 'Newest first' }) events!: UsageEventDto[];
  @ApiProperty({ example: 100 }) count!: number;
  @ApiProperty({ example: 'WzE3NDYzNTQ2NDUxMjMsIjVmMGMzYzFlIl0', nullable: true, type: String, description: 'Pass as cursor for the next page; null on the last page' })
  next_cursor!: string | null;
}
