import type { AppProps } from 'next/app';
import Head from 'next/head';
import { AppProvider } from '../components/AppProvider';
import '../styles/globals.css';
import '../styles/features.css';

export default function App({ Component, pageProps }: AppProps) {
  return (
    <>
      <Head>
        <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover" />
        <title>Parley</title>
      </Head>
      <AppProvider>
        <Component {...pageProps} />
      </AppProvider>
    </>
  );
}
