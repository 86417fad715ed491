// redis-server.js - a private redis-server for the benchmarks: started on a
// free port of 127.0.0.1 only, with no persistence, in a directory of the
// caller's, and stopped by its pid.
'use strict';
const net = require('net');
const { spawn, execFileSync } = require('child_process');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); })
      .on('error', () => resolve(false));
  });
}

/**
 * Start redis-server in dir (on `port`, else a free one); resolve
 * { port, url, pid, stop() } once it accepts connections, or null when
 * redis-server is not installed.
 */
async function startRedisServer(dir, port) {
  let bin;
  try {
    bin = execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
  port = port || await freePort();
  const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'], { stdio: 'ignore' });
  const exited = new Promise((r) => proc.once('exit', r));
  const stop = async () => {
    proc.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; i < 100; i++) {
    if (await accepts(port)) return { port, url: `redis://127.0.0.1:${port}`, pid: proc.pid, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`redis-server did not accept connections on 127.0.0.1:${port} within 5 s`);
}

module.exports = { startRedisServer };
