#!/usr/bin/env node
// kvshm-cli.js - `npx kvshm-cli ...`: runs the kvshm-cli program that came
// with this package (prebuilt, or built from source), with the same
// arguments, terminal and exit status.  kvshm-cli finds kvshm-reaper
// beside itself.
'use strict';
const os = require('os');
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

// Signals sent to this process are passed on (a terminal's ^C reaches the
// program as well: it gets two, which it treats as one).
for (const sig of ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => child.kill(sig));
}
child.on('error', (err) => {
  console.error(`kvshm-cli: cannot run ${program}: ${err.message}`);
  process.exit(127);
});
// Die of the program's signal, so that the shell sees what it would have
// seen; Node ignores or handles some (SIGPIPE, SIGUSR1): exit 128+N there.
child.on('exit', (code, signal) => {
  if (signal) {
    if (signal !== 'SIGPIPE' && signal !== 'SIGUSR1') {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(128 + (os.constants.signals[signal] || 0));
  }
  process.exit(code);
});
