import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Access } from './access.decorator';
import { ApiKeysService } from './api-keys.service';
import { ApiKeyIdParamDto } from './dto/api-key-id-param.dto';
import { ApiKeyResponseDto, CreatedApiKeyResponseDto } from './dto/api-key-response.dto';
import { CreateApiKeyDto } from './dto/create-api-key.dto';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';

@ApiTags('admin')
@Controller('admin/api-keys')
@Access('admin')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post()
  @ApiOperation({ summary: 'Create an API key; the key is in this response only' })
  @ApiCreatedResponse({ type: CreatedApiKeyResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  create(@Body() dto: CreateApiKeyDto): Promise<CreatedApiKeyResponseDto> {
    return this.apiKeys.create(dto);
  }

  @Get()
  @ApiOperation({ summary: 'Every API key, newest first (metadata only)' })
  @ApiOkResponse({ type: [ApiKeyResponseDto] })
  list(): Promise<ApiKeyResponseDto[]> {
    return this.apiKeys.list();
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Revoke an API key (at once in this process; within API_KEY_CACHE_MS elsewhere)' })
  @ApiOkResponse({ type: ApiKeyResponseDto })
  @ApiErrorResponses('validation', { kind: 'not-found', description: 'No such key' })
  revoke(@Param() { id }: ApiKeyIdParamDto): Promise<ApiKeyResponseDto> {
    return this.apiKeys.revoke(id);
  }
}
