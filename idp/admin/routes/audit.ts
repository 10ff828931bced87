/** Admin API: the audit trail (idp/audit.ts; `idp audit list | export | verify` on the CLI). */
import * as z from 'zod';
import { AuditError, AuditExportSchema, AuditQuerySchema, AuditRecordSchema, AuditVerificationSchema, type AuditTrail } from '../../audit.ts';
import { Problem } from '../problem.ts';
import { defineRoute, pageOf, pageReply, type AdminRoute } from '../route.ts';

/** The trail's refusals of a query are the caller's mistakes. */
async function asked<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AuditError && err.code !== 'invalid_record') throw new Problem('invalid_request', err.message);
    throw err;
  }
}

const Query = AuditQuerySchema.omit({ after: true }).extend({
  cursor: z.string().min(1).max(64).optional().describe('The `next` of the previous page.'),
});

export function auditRoutes(trail: AuditTrail): AdminRoute[] {
  return [
    defineRoute({
      method: 'get', path: '/audit', operationId: 'listAudit', tag: 'audit', scope: 'admin:read',
      summary: 'Audit records (admin actions, authentication decisions, factor changes, policy changes), filtered, newest first by default.',
      query: Query,
      responses: { 200: { description: 'A page of records.', schema: pageOf(AuditRecordSchema.meta({ id: 'AuditRecord' }), 'AuditPage') } },
      handler: async ({ query, url }) => {
        const { cursor, ...q } = query;
        return pageReply(await asked(() => trail.query({ ...q, after: cursor })), url);
      },
    }),
    defineRoute({
      method: 'get', path: '/audit/export', operationId: 'exportAudit', tag: 'audit', scope: 'admin:read',
      summary: 'The trail as JSON lines in Elastic Common Schema field names (README "Audit trail"), oldest first.',
      query: AuditExportSchema,
      responses: { 200: { description: 'One ECS event per line.', schema: z.string(), contentType: 'application/x-ndjson' } },
      handler: async ({ query }) => {
        const since = query.since ? Date.parse(query.since) : undefined;
        const until = query.until ? Date.parse(query.until) : undefined;
        async function* lines() {
          for await (const e of trail.export({ since, until })) yield `${JSON.stringify(e)}\n`;
        }
        return { stream: lines(), type: 'application/x-ndjson' };
      },
    }),
    defineRoute({
      method: 'get', path: '/audit/verify', operationId: 'verifyAudit', tag: 'audit', scope: 'admin:read',
      summary: 'Check the whole hash chain and its seals; names the first broken record.',
      responses: { 200: { description: 'The result (also when the chain is broken: see `ok`).', schema: AuditVerificationSchema.meta({ id: 'AuditVerification' }) } },
      handler: async () => ({ body: await trail.verify() }),
    }),
  ];
}
