// One jest config for the whole repo, in three projects that split the test files
// between them (each file is in exactly one):
//   unit  every test file that does not import describeIf: needs no root, no daemon,
//         no VM, and runs anywhere (npm run test:unit; `npm test` runs it first, so a
//         unit failure shows in seconds)
//   host  the files that import describeIf of @tortie/testbed: real components (root,
//         network namespaces, BIRD/FRR/GoBGP/etcd), skipping where missing, never on CI
//         (npm run test:host); e2e/ is here
//   vm    *.vm.test.ts: boot Debian's kernel under QEMU, one at a time (npm run test:vm);
//         also *.vmtest.ts, which no testMatch picks up: e2e/kernel.vm.test.ts runs
//         them in its VM boot, where they are in this project (not unit) by this pattern
// The split is by content (a file that needs something says so by importing describeIf)
// rather than by name, so a file cannot be called a unit test while it needs root. A
// describeIf reached in the unit project throws (the `__TORTIE_UNIT__` global).
// TypeScript is transpiled only, file by file, by swc (@swc/jest, native code: about 15
// times less CPU than TypeScript's own transpiler, which matters on CI's cold cache and
// most under the VM's emulation); type errors are caught by `npm run typecheck`, which
// `npm test` runs too.
const fs = require('node:fs');
const path = require('node:path');

const ROOTS = ['packages', 'e2e'].filter((d) => fs.existsSync(path.join(__dirname, d)));
const VM = '(\\.vm\\.test|\\.vmtest)\\.ts$';

/** Test files under `dir` (recursively): *.test.ts below a test/ directory, or in e2e/. */
function testFiles(dir, inTest) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist') continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p, inTest || e.name === 'test'));
    else if (inTest && e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const IMPORTS_DESCRIBE_IF = /import\s*\{[^}]*\bdescribeIf\b[^}]*\}\s*from/;
/** Files that need real components: they import describeIf (not the VM tests). */
const real = ROOTS.flatMap((r) => testFiles(path.join(__dirname, r), r === 'e2e')).filter(
  (f) => !new RegExp(VM).test(f) && IMPORTS_DESCRIBE_IF.test(fs.readFileSync(f, 'utf8')),
);
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const REAL = `^(${real.map(escape).join('|')})$`;

/**
 * swc options for one source syntax, matching what tsc emits for tsconfig.base.json
 * (target ES2022, whose class fields are [[Define]]d; CommonJS with esModuleInterop's
 * helpers for default and namespace imports). @swc/jest adds jest.mock hoisting. One
 * difference from tsc: a module's exports are getters (live bindings), so jest.spyOn
 * works on objects, not on another module's exports. No .swcrc is read.
 */
function swc(syntax) {
  return {
    swcrc: false,
    sourceMaps: 'inline',
    jsc: {
      parser: { syntax },
      target: 'es2022',
      transform: { useDefineForClassFields: true },
    },
    module: { type: 'commonjs' },
  };
}

const common = {
  rootDir: __dirname,
  testEnvironment: 'node',
  roots: ROOTS.map((d) => `<rootDir>/${d}`),
  testMatch: ['**/test/**/*.test.ts', '<rootDir>/e2e/**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', swc('typescript')],
    // @kubernetes/client-node >= 1 and its auth dependencies are ESM-only; jest runs
    // CommonJS, so they are transpiled (Node itself loads them with require(esm)).
    '^.+\\.js$': ['@swc/jest', swc('ecmascript')],
  },
  transformIgnorePatterns: [
    'node_modules/(?!(@kubernetes/client-node|openid-client|jose|oauth4webapi)/)',
  ],
  moduleNameMapper: {
    '^@tortie/([^/]+)$': '<rootDir>/packages/$1/src',
  },
  // netns tests start daemons and wait for BGP timers; keep a generous default (four
  // times that inside the VM runner, under software emulation: testbed's SLOW)
  testTimeout: 60000 * (process.env.TORTIE_IN_VM === '1' ? 4 : 1),
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testPathIgnorePatterns: ['/node_modules/', VM, ...(real.length ? [REAL] : [])],
      globals: { __TORTIE_UNIT__: true },
    },
    {
      ...common,
      displayName: 'host',
      testPathIgnorePatterns: ['/node_modules/', VM, `^(?!${REAL.slice(1)})`],
    },
    {
      ...common,
      displayName: 'vm',
      testPathIgnorePatterns: ['/node_modules/', `^(?!.*${VM})`],
    },
  ],
  testTimeout: common.testTimeout,
  // longest file first by a committed list, the same on a fresh clone (CI) as here
  testSequencer: path.join(__dirname, 'scripts', 'test-sequencer.js'),
  // two cores: netns suites contend for CPU when run all at once
  maxWorkers: 2,
};
