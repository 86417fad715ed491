#!/usr/bin/env node
// kvshm-cli.js - `npx kvshm-cli ...`: runs the kvshm-cli program that came
// with this package (prebuilt, or built from source), with the same
// arguments, terminal and exit status.  kvshm-cli finds kvshm-reaper
// beside itself.
'use strict';
const path = require('path');
const { spawn } = require('child_process');
const { locate, missingMessage } = require('../lib/locate');

const found = locate();
if (!found) {
  console.error(missingMessage());
  process.exit(1);
}
const program = path.join(found.dir, 'kvshm-cli');
const child = spawn(program, process.argv.slice(2), { stdio: 'inherit' });

// A terminal's ^C or ^\ reaches the whole foreground group, the program
// too: nothing to forward.  A signal sent to this process alone is passed on.
for (const sig of ['SIGINT', 'SIGQUIT']) process.on(sig, () => {});
for (const sig of ['SIGTERM', 'SIGHUP']) {
  process.on(sig, () => child.kill(sig));
}
child.on('error', (err) => {
  console.error(`kvshm-cli: cannot run ${program}: ${err.message}`);
  process.exit(127);
});
child.on('exit', (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code);
});
