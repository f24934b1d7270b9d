import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['src/schema.ts', 'node_modules/'] },
  ...tseslint.configs.recommended,
);
