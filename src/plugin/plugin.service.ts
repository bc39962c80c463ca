import { Injectable } from '@nestjs/common';
import { AiService, PlannedRequest, SpentUsage } from '../ai/ai.service';
import { toRequestTokenUsage } from '../ai/dto/request-token-usage.dto';
import type { ChatMessage, CompletionRequest } from '../ai/ai-provider.interface';
import type { RequestBudget } from '../limits/request-budget';
import { summariseTracking } from '../token-tracking/token-usage-summary';
import type { OperationType, TrackResult } from '../token-tracking/usage-record';
import { GenerateCodeDto } from './dto/generate-code.dto';
import { GeneratePluginOptionsDto } from './dto/generate-plugin.dto';
import { GenerateCodeResponseDto, GeneratePluginResponseDto } from './dto/plugin-responses.dto';
import { PluginCompilerService } from './plugin-compiler.service';
import {
  buildRepairPrompt,
  parsePluginProject,
  PLUGIN_PROJECT_SCHEMA,
  PLUGIN_RESPONSE_FORMAT_INSTRUCTIONS,
  PluginParseError,
  PluginProject,
} from './plugin-project';
import { samplePluginAnswer } from './sample-plugin-project';

export type CompileMode = 'requested' | 'always' | 'never';

interface GenerationContext {
  userId?: string;
  requestId?: string;
  operationType: OperationType;
  budget?: RequestBudget;
}

interface GeneratedProject {
  project: PluginProject;
  model: string;
  provider: string;
  tracked: TrackResult[];
  spent: SpentUsage[];
}

const DEFAULT_PLUGIN_NAME = 'GeneratedPlugin';

const ENHANCE_INSTRUCTIONS =
  'You turn short requests for Bukkit/Spigot Minecraft plugins into precise specifications for a Java developer: ' +
  'commands with arguments and permissions, events handled, configuration keys, and edge cases. ' +
  'Answer with the specification text only.';

@Injectable()
export class PluginService {
  constructor(
    private readonly ai: AiService,
    private readonly compiler: PluginCompilerService,
  ) {}

  async generate(dto: GeneratePluginOptionsDto & { userId?: string }, compile: CompileMode, requestId?: string): Promise<GeneratePluginResponseDto> {
    const name = dto.name ?? DEFAULT_PLUGIN_NAME;
    const prompt = userPrompt(dto.prompt, name, dto.complexity);
    const budget = await this.ai.reserveRequest(dto.userId, generationCalls('plugin_generation', prompt, this.ai.heldCompletionTokens({})));
    const generated = await this.generateProject(prompt, name, dto.prompt, {
      userId: dto.userId,
      requestId,
      operationType: 'plugin_generation',
      budget,
    }).finally(() => this.ai.releaseRequest(budget));
    const shouldCompile = compile === 'always' || (compile === 'requested' && dto.autoCompile === true);
    const compilation = shouldCompile ? await this.compiler.compile(generated.project) : undefined;
    const { project } = generated;
    const summary = `Generated plugin "${project.name}" (${project.files.length} files, main class ${project.mainClass})`;
    return {
      result: compilation ? `${summary}; compilation ${compilation.success ? 'succeeded' : 'failed'}` : summary,
      pluginProject: project,
      ...(compilation ? { compilation } : {}),
      model: generated.model,
      provider: generated.provider,
      ...(dto.userId ? { tokenUsage: summariseTracking(generated.tracked) } : {}),
      token_usage: toRequestTokenUsage(generated.spent),
    };
  }

  /** Prompt enhancement, then generation: two tracked calls. */
  async generateCode(dto: GenerateCodeDto, requestId?: string): Promise<GenerateCodeResponseDto> {
    const enhanceRequest: CompletionRequest = {
      messages: [
        { role: 'system', content: ENHANCE_INSTRUCTIONS },
        { role: 'user', content: `Plugin name: ${dto.pluginName}\nRequest: ${dto.prompt}` },
      ],
      simulatedAnswer: `Simulated specification for plugin ${dto.pluginName}: ${dto.prompt}`,
    };
    // The enhanced prompt is not known before the first call: the generation part holds room for the
    // largest specification the enhancement may answer with.
    const budget = await this.ai.reserveRequest(dto.userId, [
      { operations: ['prompt_enhancement'], request: enhanceRequest },
      ...generationCalls('code_generation', userPrompt('', dto.pluginName), this.ai.heldCompletionTokens({}), this.ai.heldCompletionTokens(enhanceRequest)),
    ]);
    try {
      const enhanced = await this.ai.complete(enhanceRequest, { userId: dto.userId, requestId, operationType: 'prompt_enhancement', query: dto.prompt, budget });
      return await this.finishCode(dto, enhanced, requestId, budget);
    } finally {
      await this.ai.releaseRequest(budget);
    }
  }

  private async finishCode(
    dto: GenerateCodeDto,
    enhanced: { text: string; tracked: TrackResult[]; spent: SpentUsage },
    requestId: string | undefined,
    budget: RequestBudget | undefined,
  ): Promise<GenerateCodeResponseDto> {
    const enhancedPrompt = enhanced.text.trim();
    const generated = await this.generateProject(userPrompt(enhancedPrompt, dto.pluginName), dto.pluginName, dto.prompt, {
      userId: dto.userId,
      requestId,
      operationType: 'code_generation',
      budget,
    }, enhanced);
    return {
      enhancedPrompt,
      pluginProject: generated.project,
      model: generated.model,
      provider: generated.provider,
      ...(dto.userId ? { tokenUsage: summariseTracking(generated.tracked) } : {}),
      token_usage: toRequestTokenUsage(generated.spent),
    };
  }

  /**
   * Asks for the project as JSON. An answer that is no valid project gets one repair call on the
   * same model quoting the parse error (AiService), then 502; every call is tracked.
   */
  private async generateProject(
    prompt: string,
    name: string,
    originalPrompt: string,
    context: GenerationContext,
    earlier?: { tracked: TrackResult[]; spent: SpentUsage },
  ): Promise<GeneratedProject> {
    const messages: ChatMessage[] = [
      { role: 'system', content: PLUGIN_RESPONSE_FORMAT_INSTRUCTIONS },
      { role: 'user', content: prompt },
    ];
    const completion = await this.ai.complete(
      { messages, responseFormat: 'json_object', jsonSchema: PLUGIN_PROJECT_SCHEMA, simulatedAnswer: samplePluginAnswer(name, originalPrompt) },
      {
        ...context,
        query: originalPrompt,
        validate: (text) => projectProblem(text, name),
        repairPrompt: buildRepairPrompt,
      },
    );
    return {
      project: parsePluginProject(completion.text, name),
      model: completion.model,
      provider: completion.provider,
      tracked: [...(earlier?.tracked ?? []), ...completion.tracked],
      spent: [...(earlier ? [earlier.spent] : []), completion.spent],
    };
  }
}

function projectProblem(text: string, name: string): string | null {
  try {
    parsePluginProject(text, name);
    return null;
  } catch (error) {
    if (error instanceof PluginParseError) return error.message;
    throw error;
  }
}

/**
 * The generation call and its one repair attempt, as planned before the first call: the repair
 * resends the conversation with the first answer in it twice (as the answer and echoed).
 * `extraPromptTokens` leaves room for a prompt that grows before the call (an enhanced one).
 */
function generationCalls(operation: OperationType, prompt: string, completionTokens: number, extraPromptTokens = 0): PlannedRequest[] {
  const messages: ChatMessage[] = [
    { role: 'system', content: PLUGIN_RESPONSE_FORMAT_INSTRUCTIONS },
    { role: 'user', content: prompt },
  ];
  const repair: ChatMessage[] = [...messages, { role: 'assistant', content: '' }, { role: 'user', content: buildRepairPrompt('', '') }];
  return [
    { operations: [operation], request: { messages }, extraPromptTokens },
    { operations: [operation], request: { messages: repair }, extraPromptTokens: extraPromptTokens + 2 * completionTokens },
  ];
}

function userPrompt(prompt: string, name: string, complexity?: number): string {
  const lines = [`Plugin name: ${name}`];
  if (complexity !== undefined) lines.push(`Complexity (1 = minimal, 10 = elaborate): ${complexity}`);
  lines.push('', prompt);
  return lines.join('\n');
}
