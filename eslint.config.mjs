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
);
