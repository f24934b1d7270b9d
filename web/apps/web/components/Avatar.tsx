import { initials } from '../lib/format';

/** Initials in a circle (profile pictures come later). Decorative: the name is next to it. */
export function Avatar({ name, group = false }: { name: string; group?: boolean }) {
  return (
    <span className={`avatar${group ? ' avatar--group' : ''}`} aria-hidden="true">
      {initials(name)}
    </span>
  );
}
