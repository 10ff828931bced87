/** Admin API: login events and decisions (idp/admin/events.ts). */
import * as z from 'zod';
import { EventFilter, EventView, type EventAdmin } from '../events.ts';
import { Problem } from '../problem.ts';
import { defineRoute, PageQuery, pageOf, pageReply, type AdminRoute } from '../route.ts';

export function eventRoutes(events: EventAdmin): AdminRoute[] {
  return [
    defineRoute({
      method: 'get', path: '/events', operationId: 'listEvents', tag: 'events', scope: 'admin:read',
      summary: 'Login events and their decisions, newest first, filtered.',
      description: 'A page may hold fewer items than `limit` (even none) while `next` is present: at most 5,000 events are examined per request.',
      query: EventFilter.extend(PageQuery),
      responses: { 200: { description: 'A page of events.', schema: pageOf(EventView, 'EventPage') } },
      handler: async ({ query, url }) => {
        const { limit, cursor, ...filter } = query;
        return pageReply(await events.query(filter, { limit, after: cursor }), url);
      },
    }),
    defineRoute({
      method: 'get', path: '/events/export', operationId: 'exportEvents', tag: 'events', scope: 'admin:read',
      summary: 'Every matching event as JSON lines (application/x-ndjson), newest first.',
      query: EventFilter,
      responses: { 200: { description: 'One event per line.', schema: z.string(), contentType: 'application/x-ndjson' } },
      handler: async ({ query }) => ({ stream: events.export(query), type: 'application/x-ndjson' }),
    }),
    defineRoute({
      method: 'get', path: '/events/{eventId}', operationId: 'getEvent', tag: 'events', scope: 'admin:read',
      summary: 'One login event.',
      params: z.object({ eventId: z.string().min(1).max(200) }),
      responses: { 200: { description: 'The event.', schema: EventView } },
      handler: async ({ params }) => {
        const e = await events.get(params.eventId);
        if (!e) throw new Problem('not_found', `no event "${params.eventId}"`);
        return { body: e };
      },
    }),
  ];
}
