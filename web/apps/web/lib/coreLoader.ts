/**
 * Loads `@parley/core` in the browser. The module (the wasm-bindgen glue, `--target web`) is a
 * chunk of its own, imported when the first crypto call needs it, so it is not part of any
 * page's first-load JavaScript. Webpack emits the `.wasm` as an asset of the export
 * (`/app/_next/static/media/parley_core_bg.<hash>.wasm`, immutable, `application/wasm`) and
 * `new URL(…, import.meta.url)` gives its address on our own origin; the glue fetches and
 * compiles it with `WebAssembly.instantiateStreaming`, which the CSP allows through
 * `'wasm-unsafe-eval'`.
 */
import type { CoreModule } from './crypto';

export async function loadCoreInBrowser(): Promise<CoreModule> {
  const core = await import('@parley/core');
  await core.default({
    module_or_path: new URL('@parley/core/parley_core_bg.wasm', import.meta.url),
  });
  return core;
}
