/**
 * The UTS #39 skeleton of a username (Unicode Technical Standard #39 §4, Confusable
 * Detection): skeleton(X) = NFD(map(NFD(X))), where map replaces each character by its
 * prototype in Unicode's confusables.txt (data shipped by the `unhomoglyph` package).
 * Two usernames with one skeleton look alike (`alice`, `аlice` with a Cyrillic а, `aIice`),
 * so both stores keep it in a unique column: uniqueness is the store's, not a check that a
 * parallel creation could slip past. Internal only: a skeleton is never shown or logged.
 */
import unhomoglyph from 'unhomoglyph';

export function usernameSkeleton(username: string): string {
  return unhomoglyph(username.normalize('NFD')).normalize('NFD');
}

/**
 * Existing rows that already collide (created before skeletons existed) keep their
 * accounts: the later one's skeleton gets its id appended, so the index can be built, and
 * any new look-alike still collides with the first.
 */
export function disambiguatedSkeleton(skeleton: string, id: string): string {
  return `${skeleton}#${id}`;
}
