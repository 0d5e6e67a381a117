// Type-aware lint for src/, test/ and scripts/. Run through `npm run lint` (see package.json).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'tools/**', 'runs/**', 'reports/**', 'data/**', 'native/**/build/**'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { project: resolve(root, 'tsconfig.json'), tsconfigRootDir: root } },
  },
);
