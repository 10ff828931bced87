/** The page request every listing of the admin services takes (port.ts PageRequest; cursors are opaque). */
import { z } from 'zod';
import { CursorError, type Page } from '../../adapters/storage/port.ts';
import { InvalidError } from './errors.ts';

export const pageSchema = z.strictObject({
  after: z.string().min(1).max(512).optional().describe('The `next` cursor of the previous page'),
  limit: z.number().int().min(1).max(200).default(50).describe('At most this many items'),
}).describe('A page of a listing');

export type PageInput = z.input<typeof pageSchema>;

/** A store's listing, with a cursor it did not hand out refused as a bad request (`cursor_invalid`). */
export async function listing<T>(list: () => Promise<Page<T>>): Promise<Page<T>> {
  try {
    return await list();
  } catch (e) {
    if (e instanceof CursorError) throw new InvalidError('cursor_invalid', e.message);
    throw e;
  }
}
