#!/usr/bin/env node
// Entry point of the `mydoc` command: runs the compiled CLI.
import { main } from '../dist/server/cli/main.js';

// What mydoc creates (data folder, backup folder, recovered files) is its
// owner's only, whatever the caller's umask: every file and folder is also
// made with an explicit mode; this covers what other code creates (SQLite,
// smbclient). `mydoc keys issuer` writes a public key meant to be handed out.
if (process.argv[2] !== 'keys') process.umask(0o077);

process.exitCode = await main(process.argv.slice(2));
