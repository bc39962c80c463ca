import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { HeadlessChromium, launchChromium } from './support/headless-chromium';
import { createTestApp, TestApp } from './support/test-app';

/** The quick start's last step: the printed admin key, pasted into Swagger UI's Authorize, works from "Try it out". */
describe('Swagger UI with the admin key (headless Chromium)', () => {
  let testApp: TestApp;
  let browser: HeadlessChromium;
  let api: string;
  let page: Page;

  beforeAll(async () => {
    [testApp, browser] = await Promise.all([createTestApp(), launchChromium()]);
    await testApp.app.listen(0, '127.0.0.1');
    api = `http://127.0.0.1:${(testApp.app.getHttpServer().address() as AddressInfo).port}`;
    page = await browser.context.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await testApp?.close();
  });

  async function tryItOut(method: 'get' | 'post', operationText: RegExp): Promise<string> {
    const operation = page.locator(`.opblock.opblock-${method}`).filter({ has: page.locator('.opblock-summary-path', { hasText: operationText }) }).first();
    // Swagger UI reopens the operation last opened (deep link) after a reload.
    if (!(await operation.getAttribute('class'))?.split(' ').includes('is-open')) await operation.locator('.opblock-summary').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    await operation.getByRole('button', { name: 'Execute' }).click();
    const status = operation.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 30_000 });
    return (await status.innerText()).trim();
  }

  it('answers 401 before Authorize and 200 after the key is pasted in as a bearer token', async () => {
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${api}/docs`);
    await page.locator('.opblock-summary-path').first().waitFor({ timeout: 30_000 });

    expect(await tryItOut('get', /^\/admin\/api-keys$/)).toMatch(/^401/);

    // A fresh page, so the operation starts collapsed again.
    await page.reload();
    await page.locator('.opblock-summary-path').first().waitFor({ timeout: 30_000 });
    await page.locator('.auth-wrapper .authorize').click();
    const modal = page.locator('.modal-ux');
    await modal.locator('input').first().fill(testApp.adminKey);
    // The first form is the bearer scheme; its Authorize button is labelled "Apply credentials".
    await modal.getByRole('button', { name: 'Apply credentials' }).first().click();
    await modal.getByRole('button', { name: 'Remove authorization' }).first().waitFor();
    await modal.locator('button.btn-done').first().click();

    expect(await tryItOut('get', /^\/admin\/api-keys$/)).toMatch(/^200/);
    // An AI endpoint with its example body, tracked under the example user.
    expect(await tryItOut('post', /^\/chat$/)).toMatch(/^200/);
    expect(problems).toEqual([]);
  }, 120_000);
});
