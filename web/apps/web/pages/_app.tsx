import type { AppProps } from 'next/app';
import Head from 'next/head';
import { useEffect } from 'react';
import { AppProvider } from '../components/AppProvider';
import { CallOverlay } from '../components/calls/CallOverlay';
import '../styles/globals.css';
import '../styles/features.css';
import '../styles/calls.css';

/** The service worker (app shell only, see public/sw.js); not in development builds. */
function useServiceWorker() {
  useEffect(() => {
    if (process.env.NODE_ENV !== 'production' || !('serviceWorker' in navigator)) return;
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch((error: unknown) => {
      console.warn('parley: the app will not work offline:', error);
    });
  }, []);
}

export default function App({ Component, pageProps }: AppProps) {
  useServiceWorker();
  return (
    <>
      <Head>
        <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover" />
        <title>Parley</title>
      </Head>
      <AppProvider>
        <Component {...pageProps} />
        <CallOverlay />
      </AppProvider>
    </>
  );
}
