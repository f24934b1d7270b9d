import Head from 'next/head';
import Link from 'next/link';
import type { ReactNode } from 'react';

/** A page in the main pane: a bar with a back link and the title, then a scrolling body. */
export function PanelPage({
  title,
  titleId,
  back = { href: '/chats', label: 'Back to chats' },
  actions,
  children,
}: {
  title: string;
  titleId: string;
  back?: { href: string | { pathname: string; query: Record<string, string> }; label: string };
  /** Controls at the end of the bar. */
  actions?: ReactNode;
  children: ReactNode;
}) {
  return (
    <section className="panel" aria-labelledby={titleId}>
      <Head>
        <title>{`${title} · Parley`}</title>
      </Head>
      <header className="bar">
        <Link
          href={back.href}
          // The chat list is beside the page on wide screens; any other way back stays visible.
          className={back.href === '/chats' ? 'back' : 'back back--always'}
          aria-label={back.label}
        >
          ←
        </Link>
        <h2 id={titleId} className="bar__title">
          {title}
        </h2>
        {actions}
      </header>
      <div className="panel__body">{children}</div>
    </section>
  );
}
