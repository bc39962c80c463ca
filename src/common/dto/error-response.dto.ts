import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { RequestTokenUsageDto } from '../../ai/dto/request-token-usage.dto';
import { TokenUsageSummaryDto } from '../../token-tracking/dto/token-usage-summary.dto';

/** Every error answer: the status, its reason phrase, a message a client can act on, and the request id to quote. */
export class ErrorResponseDto {
  @ApiProperty({ example: 404 }) statusCode!: number;
  @ApiProperty({ example: 'Not Found' }) error!: string;
  @ApiProperty({ example: 'No usage recorded for user user123' }) message!: string;
  @ApiProperty({ example: '0b6f7c1e-1a2b-4c3d-8e9f-0123456789ab', description: 'Also in the x-request-id response header; quote it when reporting a problem' })
  requestId!: string;
  @ApiPropertyOptional({ example: '5d1c2b3a-4e5f-6789-abcd-ef0123456789', description: 'Only on 500: the id under which the error was logged' })
  errorId?: string;
}

export class FieldErrorDto {
  @ApiProperty({ example: 'messages.0.content', description: 'Dotted path of the offending field' }) field!: string;
  @ApiProperty({ example: ['content must be a string (multi-part content is not supported)'], type: [String] }) errors!: string[];
}

export class ValidationErrorResponseDto extends ErrorResponseDto {
  @ApiProperty({ example: 400 }) override statusCode!: number;
  @ApiProperty({ example: 'Bad Request' }) override error!: string;
  @ApiProperty({ example: 'userId must match ^[A-Za-z0-9_.@-]{1,128}$' }) override message!: string;
  @ApiPropertyOptional({
    type: [FieldErrorDto],
    description: 'Every offending field, when the request failed validation; absent for other bad requests',
    example: [{ field: 'userId', errors: ['userId must match ^[A-Za-z0-9_.@-]{1,128}$'] }],
  })
  fields?: FieldErrorDto[];
}

const LIMIT_NAMES = ['rolling_24h_tokens', 'daily_tokens', 'monthly_cost'] as const;

/** 429 from a user's token or cost limit (a per-key rate limit answers with the plain error body). */
export class TokenLimitErrorResponseDto extends ErrorResponseDto {
  @ApiProperty({ example: 429 }) override statusCode!: number;
  @ApiProperty({ example: 'Too Many Requests' }) override error!: string;
  @ApiProperty({ example: '24-hour token limit of 50000 tokens reached; resets at 2026-11-24T09:12:00.000Z' }) override message!: string;
  @ApiProperty({ enum: LIMIT_NAMES, example: 'rolling_24h_tokens' }) limit!: (typeof LIMIT_NAMES)[number];
  @ApiProperty({ example: 49800, description: 'Used so far in the limit\'s period: tokens, or USD for monthly_cost' }) used!: number;
  @ApiProperty({ example: 50000, description: 'The limit: tokens, or USD for monthly_cost' }) max!: number;
  @ApiProperty({ example: '2026-11-24T09:12:00.000Z', format: 'date-time' }) resetsAt!: string;
  @ApiProperty({ example: 3600, description: 'Seconds until the limit resets; also the Retry-After header' }) retryAfterSeconds!: number;
  @ApiPropertyOptional({ type: RequestTokenUsageDto, description: 'Present when provider calls were made before the limit was reached' })
  token_usage?: RequestTokenUsageDto;
  @ApiPropertyOptional({ type: TokenUsageSummaryDto, description: 'Present when provider calls were made and the user is tracked' })
  tokenUsage?: TokenUsageSummaryDto;
}

const FAILURE_KINDS = ['timeout', 'rate_limited', 'server_error', 'network', 'auth', 'rejected', 'invalid_answer', 'aborted'] as const;

export class AiFailedAttemptDto {
  @ApiProperty({ enum: ['primary', 'fallback'], example: 'primary' }) role!: 'primary' | 'fallback';
  @ApiProperty({ example: 'openai/gpt-4o-mini' }) model!: string;
  @ApiProperty({ enum: FAILURE_KINDS, example: 'server_error' }) failure!: (typeof FAILURE_KINDS)[number];
  @ApiPropertyOptional({ example: 500, description: "The provider's HTTP status, when it answered" }) status?: number;
}

/** 502/503/504 when the AI provider failed; tokens already spent are reported and billed. */
export class AiFailureResponseDto extends ErrorResponseDto {
  @ApiProperty({ example: 502 }) override statusCode!: number;
  @ApiProperty({ example: 'Bad Gateway' }) override error!: string;
  @ApiProperty({ example: 'AI provider failed: primary model openai/gpt-4o-mini returned HTTP 500; fallback model openai/gpt-4o returned HTTP 500' })
  override message!: string;
  @ApiPropertyOptional({ type: [AiFailedAttemptDto], description: 'Each provider attempt and how it failed' })
  attempts?: AiFailedAttemptDto[];
  @ApiProperty({ type: RequestTokenUsageDto, description: "This request's provider usage before it failed (zeros when no call was accepted)" })
  token_usage!: RequestTokenUsageDto;
  @ApiPropertyOptional({ type: TokenUsageSummaryDto, description: "The user's ledger after this request, when a user is tracked" })
  tokenUsage?: TokenUsageSummaryDto;
}

/** 429 from the per-key request rate limit. */
export class RateLimitErrorResponseDto extends ErrorResponseDto {
  @ApiProperty({ example: 429 }) override statusCode!: number;
  @ApiProperty({ example: 'Too Many Requests' }) override error!: string;
  @ApiProperty({ example: 'rate limit of 600 requests per minute reached for this API key; retry in 12 s' }) override message!: string;
  @ApiProperty({ example: 12, description: 'Also the Retry-After header' }) retryAfterSeconds!: number;
}
