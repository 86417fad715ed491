#!/usr/bin/env node
// run.js - what `make bench` runs: every benchmark program in turn, each with
// --json, then one summary table of every target they report.
//
// Each program prints one JSON object on stdout and its text report on
// stderr; run.js shows the text as it comes, keeps both, and reads the
// object's "targets" array (the format is in bench/README.md), whatever
// targets a program lists.  A program that prints no JSON (or fails) still
// runs: its stdout is shown, and the summary says that it reported no
// targets.  The run is saved in the output directory (build/bench/):
//
//   <program>.json  <program>.txt   each program's JSON and text report
//   run.json                        the machine, command, date, commit and
//                                   every program's targets (bench/report.js
//                                   rewrites README.md's section from it)
//   summary.txt                     the summary table, as printed
//
//   node bench/run.js [--quick] [--build DIR] [--out DIR] [--command TEXT]
//                     [--only NAME[,NAME]]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');

function usage(msg) {
  if (msg) console.error(`run.js: ${msg}`);
  console.error('usage: node bench/run.js [--quick] [--build DIR] [--out DIR] ' +
    '[--command TEXT] [--only NAME[,NAME]]');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { quick: false, build: 'build', out: null, command: null, only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--quick') o.quick = true;
    else if (a === '--build') o.build = value();
    else if (a === '--out') o.out = value();
    else if (a === '--command') o.command = value();
    else if (a === '--only') o.only = value().split(',');
    else usage(`unknown argument ${a}`);
  }
  o.out = o.out || path.join(o.build, 'bench');
  o.command = o.command || ['node', 'bench/run.js', ...argv].join(' ');
  return o;
}

// The programs, in the order they run.  --quick is each one's first
// argument (bench_store reads only argv[1]).
function programs(o) {
  const q = o.quick ? ['--quick'] : [];
  return [
    { name: 'bench_shm', argv: [path.join(o.build, 'bench', 'bench_shm'), ...q, '--json'] },
    { name: 'bench_store', argv: [path.join(o.build, 'bench', 'bench_store'), ...q, '--json'] },
    { name: 'bench-node', argv: [process.execPath, 'bench/node/bench.js', ...q, '--json'] },
    { name: 'bench-near', argv: [process.execPath, 'bench/node/near.js', ...q, '--json'] },
  ].filter((p) => !o.only || o.only.includes(p.name));
}

// Run one program: its stderr goes through to ours as it comes; returns
// its exit status and both streams.
function runProgram(p) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(p.argv[0], p.argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => {
      err.push(d);
      process.stderr.write(d);
    });
    child.on('error', (e) => err.push(Buffer.from(`run.js: ${e.message}\n`)));
    child.on('close', (code, signal) => resolve({
      code, signal, seconds: (Date.now() - t0) / 1000,
      stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(),
    }));
  });
}

// A program's targets, checked: each needs name, figure, target, unit;
// cmp defaults to ">="; pass, when absent, follows from cmp.
function readTargets(obj) {
  if (!obj || !Array.isArray(obj.targets)) return { targets: [], problem: 'its JSON has no "targets" array' };
  const targets = [];
  for (const t of obj.targets) {
    const ok = t && typeof t.name === 'string' && typeof t.figure === 'number' &&
      typeof t.target === 'number' && typeof t.unit === 'string';
    if (!ok) {
      targets.push({ name: String(t && t.name), malformed: true });
      continue;
    }
    const cmp = t.cmp || '>=';
    const computed = cmp === '<=' ? t.figure <= t.target : t.figure >= t.target;
    targets.push({ ...t, cmp, pass: typeof t.pass === 'boolean' ? t.pass : computed });
  }
  return { targets };
}

// A number with its unit: ratios as 1.23x, rates as 1.23M ops/s, the rest
// with three significant digits; `digits` more or fewer decimals.
function formatFigure(v, unit, digits = 2) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return String(v);
  if (unit === 'x') return `${v.toFixed(digits)}x`;
  if (/\/s$/.test(unit) && Math.abs(v) >= 1e3) {
    return Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(digits)}M ${unit}` : `${(v / 1e3).toFixed(digits - 1)}k ${unit}`;
  }
  const s = Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toPrecision(3)).toString();
  return unit ? `${s} ${unit}` : s;
}

// A target's figure and wanted value as text.  The figure gets one more
// decimal when rounding would print the target's own value beside MISS.
function targetText(t) {
  const wanted = `${t.cmp} ${formatFigure(t.target, t.unit)}`;
  let figure = formatFigure(t.figure, t.unit);
  if (figure === formatFigure(t.target, t.unit) && !t.pass) figure = formatFigure(t.figure, t.unit, 3);
  return { figure, wanted };
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function machine() {
  let cpu = os.cpus()[0]?.model.trim() || 'unknown';
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux
  }
  let nproc = os.cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    // no coreutils: os.cpus()
  }
  return { nproc, cpu, kernel: `${os.type()} ${os.release()} ${os.machine ? os.machine() : os.arch()}`, load: os.loadavg()[0] };
}

// The summary table as lines of text.
function summaryLines(run) {
  const rows = [];
  for (const p of run.programs) {
    if (!p.targets.length) {
      rows.push([p.name, `(no targets: ${p.problem || 'none listed'})`, '', '', '']);
      continue;
    }
    for (const t of p.targets) {
      if (t.malformed) {
        rows.push([p.name, t.name, '(malformed target)', '', '']);
        continue;
      }
      const { figure, wanted } = targetText(t);
      rows.push([p.name, t.name, figure, wanted, (t.pass ? 'PASS' : 'MISS') + (t.note ? `  (${t.note})` : '')]);
    }
  }
  const head = ['program', 'target', 'figure', 'wanted', ''];
  const w = [0, 1, 2, 3].map((i) => Math.max(head[i].length, ...rows.map((r) => r[i].length)));
  const line = (r) => `${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padStart(w[2])}  ${r[3].padEnd(w[3])}  ${r[4]}`.trimEnd();
  const all = run.programs.flatMap((p) => p.targets.filter((t) => !t.malformed));
  const pass = all.filter((t) => t.pass).length;
  return [
    `== every target: ${run.command}, ${run.date}, commit ${run.commit || '?'}${run.dirty ? ' (uncommitted changes)' : ''}`,
    `   nproc ${run.machine.nproc}, cpu "${run.machine.cpu}", ${run.machine.kernel}${run.quick ? '; --quick: figures of a smoke run' : ''}`,
    line(head),
    ...rows.map(line),
    `${all.length} targets: ${pass} PASS, ${all.length - pass} MISS`,
  ];
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  fs.mkdirSync(o.out, { recursive: true });
  const run = {
    format: 1,
    command: o.command,
    quick: o.quick,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: git(['rev-parse', '--short=12', 'HEAD']),
    branch: git(['rev-parse', '--abbrev-ref', 'HEAD']),
    dirty: (git(['status', '--porcelain', '--untracked-files=no']) || '') !== '',
    machine: machine(),
    programs: [],
  };
  let failed = false;
  for (const p of programs(o)) {
    console.error(`\n==== ${p.name}: ${p.argv.join(' ')}`);
    const r = await runProgram(p);
    const entry = { name: p.name, command: p.argv.join(' '), exit: r.code, signal: r.signal,
      seconds: r.seconds, targets: [] };
    let obj = null;
    try {
      obj = JSON.parse(r.stdout);
    } catch {
      // not JSON: a program that prints its report on stdout
    }
    let text = r.stderr;
    if (obj) {
      fs.writeFileSync(path.join(o.out, `${p.name}.json`), r.stdout);
      Object.assign(entry, readTargets(obj));
    } else {
      process.stderr.write(r.stdout);
      text += r.stdout;
      fs.rmSync(path.join(o.out, `${p.name}.json`), { force: true });
      entry.problem = 'it printed no JSON on stdout';
    }
    fs.writeFileSync(path.join(o.out, `${p.name}.txt`), text);
    if (r.code !== 0) {
      failed = true;
      entry.problem = `it exited with ${r.signal || r.code}`;
    }
    run.programs.push(entry);
  }
  run.machine.load_after = os.loadavg()[0];
  const lines = summaryLines(run);
  fs.writeFileSync(path.join(o.out, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
  fs.writeFileSync(path.join(o.out, 'summary.txt'), `${lines.join('\n')}\n`);
  console.log(`\n${lines.join('\n')}`);
  console.log(`(saved in ${path.relative(process.cwd(), o.out) || '.'}/: run.json, summary.txt, ` +
    'and each program\'s .json and .txt; `make bench-readme` puts the table into README.md)');
  process.exit(failed ? 1 : 0);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

module.exports = { formatFigure, readTargets, targetText };
