#!/usr/bin/env node
// Entry point of the `mydoc` command: runs the compiled CLI.
import { main } from '../dist/server/cli.js';

process.exitCode = await main(process.argv.slice(2));
