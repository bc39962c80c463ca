/** Two projects: fast unit specs beside the code, and end-to-end specs under test/. */
const transform = { '^.+\\.(t|j)s$': ['@swc/jest'] };
// ESM-only dependencies (loaded natively by Node >= 20.19, but not by jest's module system) are compiled to CommonJS.
const transformIgnorePatterns = ['/node_modules/(?!(content-disposition)/)'];

module.exports = {
  testTimeout: 60000,
  transform,
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      rootDir: '.',
      testMatch: ['<rootDir>/src/**/*.spec.ts'],
      transform,
      transformIgnorePatterns,
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      rootDir: '.',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      transform,
      transformIgnorePatterns,
    },
  ],
};
