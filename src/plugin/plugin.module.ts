import { Module } from '@nestjs/common';
import { AiModule } from '../ai/ai.module';
import { AppConfig } from '../config/app-config';
import { CodeGenerationController } from './code-generation.controller';
import { PLUGIN_COMPILER_OPTIONS, PluginCompilerOptions, PluginCompilerService } from './plugin-compiler.service';
import { PluginController } from './plugin.controller';
import { PluginService } from './plugin.service';

@Module({
  imports: [AiModule],
  controllers: [PluginController, CodeGenerationController],
  providers: [
    {
      provide: PLUGIN_COMPILER_OPTIONS,
      inject: [AppConfig],
      useFactory: (config: AppConfig): PluginCompilerOptions => ({
        tool: config.PLUGIN_BUILD_TOOL,
        timeoutMs: config.PLUGIN_BUILD_TIMEOUT_MS,
      }),
    },
    PluginCompilerService,
    PluginService,
  ],
})
export class PluginModule {}
