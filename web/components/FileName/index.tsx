import { Fragment } from 'react';

/**
 * A file name that wraps at its separators (/ - _ .) rather than in the middle of a word: a
 * break opportunity after each, and anywhere only as a last resort (CSS overflow-wrap).
 */
export function FileName({ name }: { name: string }) {
  const parts = name.split(/(?<=[/\-_.])/);
  return (
    <span className="file-name">
      {parts.map((p, i) => (
        <Fragment key={i}>
          {p}
          {i < parts.length - 1 && <wbr />}
        </Fragment>
      ))}
    </span>
  );
}
