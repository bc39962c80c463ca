import type { AddressInfo } from 'node:net';
import type { BootstrapAdminKey } from '../auth/bootstrap-admin-key';

/** The URL a browser on this machine reaches the service at: a wildcard bind is shown as localhost. */
export function localBaseUrl(host: string, address: AddressInfo | string | null): string {
  const port = address && typeof address === 'object' ? address.port : undefined;
  const shown = ['0.0.0.0', '::', ''].includes(host) ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}${port === undefined ? '' : `:${port}`}`;
}

/**
 * Plain text (not a JSON log line) on purpose: on a developer's first start this is the one
 * thing to read, and it must be copyable as it stands.
 */
export function devAdminKeyBanner(baseUrl: string, bootstrap: BootstrapAdminKey): string {
  const kept = bootstrap.file
    ? `${bootstrap.source === 'created' ? 'made now and kept' : 'kept'} in ${bootstrap.file}; delete the file for a new one`
    : 'made now, NOT saved: it lasts for this run only';
  return [
    '',
    `  token-ledger is ready at ${baseUrl}`,
    `    Swagger UI  ${baseUrl}/docs  (Authorize, paste the key)`,
    `    Dashboard   ${baseUrl}/usage`,
    '',
    `  Development admin key (${kept}):`,
    '',
    `    ${bootstrap.key}`,
    '',
    `    curl -H "Authorization: Bearer ${bootstrap.key}" ${baseUrl}/admin/api-keys`,
    '',
    '  It exists because MONGODB_URI and ADMIN_API_KEY are unset; set ADMIN_API_KEY to choose the key.',
    '',
  ].join('\n');
}
