import { fileURLToPath } from 'node:url';

/**
 * A static export served by the api under `/app/` (same origin as the API and `/ws`).
 * @type {import('next').NextConfig}
 */
const nextConfig = {
  output: 'export',
  basePath: '/app',
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
  poweredByHeader: false,
  productionBrowserSourceMaps: false,
  // The SDK is consumed as TypeScript source from the workspace.
  transpilePackages: ['@parley/sdk'],
  turbopack: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
  },
};

export default nextConfig;
