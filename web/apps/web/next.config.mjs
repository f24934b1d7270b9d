/**
 * A static export served by the api under `/app/` (same origin as the API and `/ws`), built
 * with webpack (`next build --webpack`, see the README: Turbopack adds an inline script).
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
};

export default nextConfig;
