#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx gkh-bus …` works right after `npm ci`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../gateway/cli.ts');
process.exitCode = await main(process.argv.slice(2));
