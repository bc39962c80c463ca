import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { RequestTokenUsageDto } from '../../ai/dto/request-token-usage.dto';
import { TokenUsageSummaryDto } from '../../token-tracking/dto/token-usage-summary.dto';

export class PluginFileDto {
  @ApiProperty({ example: 'src/main/java/com/example/myplugin/MyPlugin.java' }) path!: string;
  @ApiProperty({ example: 'package com.example.myplugin;\n...' }) content!: string;
}

export class PluginProjectDto {
  @ApiProperty({ example: 'MyPlugin' }) name!: string;
  @ApiProperty({ example: 'com.example.myplugin' }) packageName!: string;
  @ApiProperty({ example: 'com.example.myplugin.MyPlugin' }) mainClass!: string;
  @ApiProperty({ example: '1.0.0' }) version!: string;
  @ApiPropertyOptional({ example: 'Teleports players home.' }) description?: string;
  @ApiProperty({ type: [PluginFileDto] }) files!: PluginFileDto[];
}

export class CompilationResultDto {
  @ApiProperty({ example: true }) success!: boolean;
  @ApiProperty({ example: 1840 }) durationMs!: number;
  @ApiProperty({ example: '$ javac --release 17 -d out ...' }) log!: string;
  @ApiProperty({ example: 'javac', enum: ['mvn', 'javac', 'none'] }) tool!: string;
}

export class GeneratePluginResponseDto {
  @ApiProperty({ example: 'Generated plugin "MyPlugin" (3 files, main class com.example.myplugin.MyPlugin)' })
  result!: string;

  @ApiProperty({ type: PluginProjectDto }) pluginProject!: PluginProjectDto;

  @ApiPropertyOptional({ type: CompilationResultDto, description: 'Present when the project was compiled' })
  compilation?: CompilationResultDto;

  @ApiProperty({ example: 'openai/gpt-4o-mini', description: '"simulated" when no provider is configured' }) model!: string;
  @ApiProperty({ example: 'openrouter', description: '"simulated" when no provider is configured' }) provider!: string;

  @ApiPropertyOptional({ type: TokenUsageSummaryDto, description: 'Present when the request was tracked for a userId' })
  tokenUsage?: TokenUsageSummaryDto;

  @ApiProperty({ type: RequestTokenUsageDto, description: "This request's provider usage (every call, including a repair)" })
  token_usage!: RequestTokenUsageDto;
}

export class GenerateCodeResponseDto {
  @ApiProperty({ example: 'Create a Spigot plugin named TeleportPlugin with /tp commands...' }) enhancedPrompt!: string;
  @ApiProperty({ type: PluginProjectDto }) pluginProject!: PluginProjectDto;
  @ApiProperty({ example: 'openai/gpt-4o-mini' }) model!: string;
  @ApiProperty({ example: 'openrouter' }) provider!: string;

  @ApiPropertyOptional({ type: TokenUsageSummaryDto, description: 'Present when userId was given; covers both calls' })
  tokenUsage?: TokenUsageSummaryDto;

  @ApiProperty({ type: RequestTokenUsageDto, description: "This request's provider usage (both calls)" })
  token_usage!: RequestTokenUsageDto;
}
