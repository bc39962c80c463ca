import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Access } from '../auth/access.decorator';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';
import { RepriceReportDto, RepriceRequestDto } from './dto/reprice.dto';
import { UsageRepricingService } from './usage-repricing.service';

@ApiTags('analytics')
@Controller('api/usage')
export class UsageRepricingController {
  constructor(private readonly repricing: UsageRepricingService) {}

  @Post('reprice')
  @HttpCode(200)
  @Access('admin')
  @ApiOperation({
    summary: "Re-price a period's usage with the current price lists (dry run by default)",
    description:
      'Events priced by a price list get the price in force on their own date; the change moves the event, the daily/monthly aggregates and the user ledger by the same amount. Provider-reported costs never change. Running it twice changes nothing the second time.',
  })
  @ApiOkResponse({ type: RepriceReportDto })
  @ApiErrorResponses(BODY_ERRORS)
  reprice(@Body() dto: RepriceRequestDto): Promise<RepriceReportDto> {
    return this.repricing.reprice(dto);
  }
}
