#!/usr/bin/env node
/**
 * The `idp` command (package.json "bin"). Checks the Node.js version first, then loads the
 * CLI (see node-version.ts for why the rest must be a dynamic import).
 */
import { requireSupportedNode } from './node-version.ts';

requireSupportedNode();
await import('./cli.ts');
