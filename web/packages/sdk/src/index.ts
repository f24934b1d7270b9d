export {
  authMiddleware,
  createParleyClient,
  PUBLIC_PATHS,
  type ParleyClient,
  type ParleyClientOptions,
  type TokenSource,
} from './client';
export * from './frames';
export * from './media';
export * from './types';
export type { components, operations, paths } from './schema';
