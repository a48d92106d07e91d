// One jest run for the whole repo. TypeScript is transpiled only (isolatedModules);
// type errors are caught by `npm run typecheck`, which `npm test` runs first.
const fs = require('node:fs');
const path = require('node:path');

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // e2e/ joins once it holds tests
  roots: ['packages', 'e2e']
    .filter((d) => fs.existsSync(path.join(__dirname, d)))
    .map((d) => `<rootDir>/${d}`),
  testMatch: ['**/test/**/*.test.ts', '<rootDir>/e2e/**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
    // @kubernetes/client-node >= 1 and its auth dependencies are ESM-only; jest runs
    // CommonJS, so they are transpiled (Node itself loads them with require(esm)).
    '^.+\\.js$': [
      'ts-jest',
      {
        tsconfig: {
          allowJs: true,
          module: 'commonjs',
          target: 'ES2022',
          isolatedModules: true,
          esModuleInterop: true,
        },
      },
    ],
  },
  transformIgnorePatterns: [
    'node_modules/(?!(@kubernetes/client-node|openid-client|jose|oauth4webapi)/)',
  ],
  moduleNameMapper: {
    '^@tortie/([^/]+)$': '<rootDir>/packages/$1/src',
  },
  // netns tests start daemons and wait for BGP timers; keep a generous default.
  testTimeout: 60000,
  // two cores: netns suites contend for CPU when run all at once
  maxWorkers: 2,
};
