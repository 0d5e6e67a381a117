// Type-aware lint for src/ and test/ (typescript-eslint's recommendedTypeChecked), run by `npm run lint`.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'tools/**', 'runs/**', 'reports/**', 'data/**', 'native/**'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { project: resolve(root, 'tsconfig.json'), tsconfigRootDir: root } },
    rules: {
      // Methods that implement a Promise-returning interface stay `async` even when they need no await.
      '@typescript-eslint/require-await': 'off',
      // `_name` marks a parameter or binding that is required by position but not used.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // tfjs ops infer their rank from the asserted tensor type (`tf.zeros(shape) as tf.Tensor2D`), its documented idiom.
      '@typescript-eslint/no-unnecessary-type-assertion': [
        'error',
        {
          typesToIgnore: [
            'tf.Tensor',
            'tf.Tensor1D',
            'tf.Tensor2D',
            'tf.Tensor3D',
            'tf.Tensor4D',
            'tf.Tensor5D',
            'tf.Tensor6D',
            'tf.Scalar',
            'Imagined',
            'T',
          ],
        },
      ],
      // Shapes and lists of numbers are printed as `1,2,3` on purpose in messages.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowArray: true }],
    },
  },
  {
    // Tests read JSON fixtures and CLI output as untyped data and hand methods to expect().
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
