#!/usr/bin/env node
// `npx flokie …` from a checkout: runs the TypeScript CLI through tsx's loader, no build needed.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../src/cli/index.ts', import.meta.url).href);
