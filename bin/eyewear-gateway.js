#!/usr/bin/env node
// Node 24 runs the TypeScript sources directly (type stripping); the single executable bundles them.
import '../gateway/cli.ts';
