import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-console': 'error',
    },
  },
  {
    // CLIs, benchmarks, the lab and tests talk to a person on stdout
    files: [
      '**/cli.ts',
      '**/bin/**',
      'bench/**',
      'e2e/**',
      '**/test/**',
      'scripts/**',
      '**/*.js',
      '**/*.mjs',
    ],
    rules: { 'no-console': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // A test skips only through describeIf of @tortie/testbed, which says why and fails
    // under CI unless allowed (.ci/allowed-skips.json); .only would skip everything else.
    files: ['**/test/**', 'e2e/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        ...['describe', 'test', 'it'].flatMap((object) =>
          ['skip', 'only', 'todo'].map((property) => ({
            object,
            property,
            message: 'skip with describeIf of @tortie/testbed (it says why, and CI fails on it)',
          })),
        ),
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.name=/^(xit|xtest|xdescribe|fit|fdescribe)$/]',
          message: 'skip with describeIf of @tortie/testbed (it says why, and CI fails on it)',
        },
      ],
    },
  },
);
