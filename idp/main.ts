#!/usr/bin/env node
/**
 * `npm start`. Checks the Node.js version first, then loads the server (see
 * node-version.ts for why the rest must be a dynamic import).
 */
import { requireSupportedNode } from './node-version.ts';

requireSupportedNode();
await import('./start.ts');
