import { ApiProperty } from '@nestjs/swagger';
import { RequestTokenUsageDto } from '../../ai/dto/request-token-usage.dto';
import { TokenUsageSummaryDto } from '../../token-tracking/dto/token-usage-summary.dto';
import { CHAT_INTENTS, ChatIntent } from '../chat-intent';

export class ChatMessageResponseDto {
  @ApiProperty({ example: true }) success!: boolean;
  @ApiProperty({ enum: CHAT_INTENTS, example: 'info', description: 'What the intent analysis decided' }) type!: ChatIntent;
  @ApiProperty({ example: 'Register the command in plugin.yml, then implement CommandExecutor...' }) message!: string;
  @ApiProperty({ example: 'user123' }) username!: string;
  @ApiProperty({ example: 'MyPlugin', nullable: true, type: String }) pluginName!: string | null;
  @ApiProperty({ example: 'openai/gpt-4o-mini', description: '"simulated" when no provider is configured' }) model!: string;
  @ApiProperty({ example: 'openrouter', description: '"simulated" when no provider is configured' }) provider!: string;
  @ApiProperty({ type: TokenUsageSummaryDto, description: 'tokensUsedThisRequest covers the intent call and the answer' })
  tokenUsage!: TokenUsageSummaryDto;

  @ApiProperty({ type: RequestTokenUsageDto, description: "This request's provider usage (intent call and answer)" })
  token_usage!: RequestTokenUsageDto;
}
