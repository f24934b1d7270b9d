import Head from 'next/head';
import Link from 'next/link';

/**
 * Our own 404: Next's default one styles itself with inline `style` attributes and a `<style>`
 * element, which the api's CSP (`style-src 'self'`) blocks.
 */
export default function NotFoundPage() {
  return (
    <main className="splash" id="main">
      <Head>
        <title>Not found · Parley</title>
      </Head>
      <h1 className="brand">Parley</h1>
      <p>There is no page here.</p>
      <Link className="button" href="/chats">
        Go to your chats
      </Link>
    </main>
  );
}
