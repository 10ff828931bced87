/** The page request every listing of the admin services takes (port.ts PageRequest; cursors are opaque). */
import { z } from 'zod';

export const pageSchema = z.strictObject({
  after: z.string().min(1).max(512).optional().describe('The `next` cursor of the previous page'),
  limit: z.number().int().min(1).max(200).default(50).describe('At most this many items'),
}).describe('A page of a listing');

export type PageInput = z.input<typeof pageSchema>;

