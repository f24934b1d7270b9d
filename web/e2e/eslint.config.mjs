import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/'] },
  js.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      // Node scripts whose `page.evaluate` callbacks run in the page.
      globals: { ...globals.node, ...globals.browser },
    },
  },
];
