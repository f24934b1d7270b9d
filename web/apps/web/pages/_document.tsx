import { Head, Html, Main, NextScript } from 'next/document';

/**
 * Pages Router on purpose: its export carries page data as a non-executable
 * `<script type="application/json">`, so the api's `script-src 'self' 'wasm-unsafe-eval'`
 * policy holds without `'unsafe-inline'` (an App Router export has inline scripts).
 */
export default function Document() {
  return (
    <Html lang="en">
      <Head>
        <meta name="color-scheme" content="light dark" />
        <meta name="referrer" content="no-referrer" />
        {/* Ours, so the browser does not ask the API for /favicon.ico. */}
        <link rel="icon" href="/app/favicon.svg" type="image/svg+xml" />
        {/* Installable (scripts/write-sw.mjs, public/sw.js, public/manifest.webmanifest). */}
        <link rel="manifest" href="/app/manifest.webmanifest" />
        <link rel="apple-touch-icon" href="/app/icons/icon-192.png" />
        <meta name="theme-color" content="#0b6e4f" />
      </Head>
      <body>
        <Main />
        <NextScript />
      </body>
    </Html>
  );
}
