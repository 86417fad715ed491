// pipe-server.js - the first design's shape, for the benchmark: a cache
// process reached over a pipe.  It holds a Map; requests are lines on
// stdin, replies lines on stdout:
//   S <key> <value>  ->  I        G <key>  ->  <value> (empty if missing)
//   R <key>          ->  R
'use strict';
const map = new Map();
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buf += chunk;
  let out = '';
  let nl;
  let start = 0;
  while ((nl = buf.indexOf('\n', start)) !== -1) {
    const line = buf.slice(start, nl);
    start = nl + 1;
    const op = line[0];
    const sp = line.indexOf(' ', 2);
    if (op === 'S') {
      map.set(line.slice(2, sp), line.slice(sp + 1));
      out += 'I\n';
    } else if (op === 'G') {
      const v = map.get(line.slice(2));
      out += `${v === undefined ? '' : v}\n`;
    } else if (op === 'R') {
      map.delete(line.slice(2));
      out += 'R\n';
    }
  }
  buf = buf.slice(start);
  if (out) process.stdout.write(out);
});
process.stdin.on('end', () => process.exit(0));
