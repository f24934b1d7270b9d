/** `@parley/core` in Node: the real wasm, instantiated from the package's file. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { CoreModule } from '../crypto';

const require = createRequire(import.meta.url);

export async function loadCoreInNode(): Promise<CoreModule> {
  const core = await import('@parley/core');
  core.initSync({ module: readFileSync(require.resolve('@parley/core/parley_core_bg.wasm')) });
  return core;
}
