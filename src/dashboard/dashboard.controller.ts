import { Controller, Get, Headers, NotFoundException, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '../auth/access.decorator';
import type { DashboardAsset } from './dashboard-assets';
import { DashboardAssetsService } from './dashboard-assets.service';

/**
 * Tighter than the API's default policy: only this origin's scripts, styles and data calls,
 * no inline styles, and the page may not be framed.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  'upgrade-insecure-requests',
].join('; ');

/** The usage dashboard: one public page (its data calls carry the user's API key) and its files. */
@ApiExcludeController()
@Controller()
export class DashboardController {
  constructor(private readonly assets: DashboardAssetsService) {}

  @Get(['usage', 'token-usage'])
  @Access('public')
  page(@Headers('if-none-match') ifNoneMatch: string | undefined, @Res() reply: FastifyReply): void {
    send(reply.header('content-security-policy', DASHBOARD_CSP), this.assets.page(), ifNoneMatch);
  }

  @Get('dashboard/assets/:file')
  @Access('public')
  asset(@Param('file') file: string, @Headers('if-none-match') ifNoneMatch: string | undefined, @Res() reply: FastifyReply): void {
    const asset = this.assets.get(file);
    if (!asset) throw new NotFoundException(`No dashboard asset named ${JSON.stringify(file.slice(0, 100))}`);
    send(reply, asset, ifNoneMatch);
  }
}

function send(reply: FastifyReply, asset: DashboardAsset, ifNoneMatch: string | undefined): void {
  // Revalidated on every load (the names carry no content hash); unchanged files cost a 304.
  reply.header('cache-control', 'no-cache').header('etag', asset.etag);
  if (ifNoneMatch === asset.etag) {
    reply.code(304).send();
    return;
  }
  reply.type(asset.contentType).send(asset.body);
}
