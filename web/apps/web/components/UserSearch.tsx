import type { UserView } from '@parley/sdk';
import { useEffect, useState, type ReactNode } from 'react';
import { useController } from './AppProvider';
import { Avatar } from './Avatar';

type Status = 'idle' | 'searching' | 'done' | 'error';

/** A search box for people (`GET /users?q=`), results listed with an action each. */
export function UserSearch({
  label,
  action,
}: {
  label: string;
  /** The control shown beside each result. */
  action: (user: UserView) => ReactNode;
}) {
  const controller = useController();
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<UserView[]>([]);
  const [status, setStatus] = useState<Status>('idle');
  const q = query.trim();

  useEffect(() => {
    if (!controller || q.length === 0) return;
    let current = true;
    const timer = setTimeout(() => {
      controller
        .searchUsers(q)
        .then((users) => {
          if (!current) return;
          setResults(users);
          setStatus('done');
        })
        .catch(() => {
          if (current) setStatus('error');
        });
    }, 250);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [q, controller]);

  const shown = q.length > 0 ? results : [];
  const shownStatus: Status = q.length > 0 ? status : 'idle';

  return (
    <div className="search">
      <div className="field">
        <label htmlFor="user-search">{label}</label>
        <input
          id="user-search"
          type="search"
          value={query}
          onChange={(event) => {
            setQuery(event.target.value);
            setStatus(event.target.value.trim() ? 'searching' : 'idle');
          }}
          placeholder="Name or status"
          autoComplete="off"
          maxLength={100}
          aria-describedby="user-search-status"
        />
      </div>
      <p id="user-search-status" className="hint" aria-live="polite">
        {shownStatus === 'searching'
          ? 'Searching…'
          : shownStatus === 'error'
            ? 'Search failed. Try again.'
            : shownStatus === 'done'
              ? `${shown.length} ${shown.length === 1 ? 'person' : 'people'} found`
              : ''}
      </p>
      <ul className="people">
        {shown.map((user) => (
          <li key={user.id} className="people__item">
            <Avatar name={user.name} mediaId={user.avatar_media_id ?? null} />
            <span className="people__text">
              <span className="people__name">{user.name}</span>
              {user.status ? <span className="people__status">{user.status}</span> : null}
            </span>
            {action(user)}
          </li>
        ))}
      </ul>
    </div>
  );
}
