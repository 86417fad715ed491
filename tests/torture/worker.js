// worker.js - one incarnation of a torture writer, in Node through the
// addon (worker.c is the same in C; torture.h defines the keys, the value
// format and the journal, and this file repeats them).  Runs until the
// driver kills it.
//
//   node worker.js NAME WRITER INC ROUND NWRITERS NOWN NSTABLE NCTR JOURNAL SEED
//                  WALK_MS
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const kvshm = require(path.join(__dirname, '..', '..', 'addon', 'lib'));

const TV_MAGIC = 0x56545254;
const TV_HDR = 24;
const PAYLOAD_MIN = 10;
const PAYLOAD_MAX = 200 * 1024;
const R_INFLIGHT = 1, R_ACK = 2, R_SEE = 3, R_FAIL = 4;
const OP_SET = 1, OP_SETNX = 2, OP_SETXX = 3, OP_DEL = 4, OP_INCR = 5,
  OP_GET = 6, OP_WALK = 7, OP_CLAIM = 8;
const K_OWN = 1, K_STABLE = 2, K_CTR = 3, K_CLAIM = 4, K_OTHER = 5;
const F_TORN = 1, F_FOREIGN = 2, F_WALK_DUP = 3, F_WALK_MISSING = 4,
  F_CTR_REGRESS = 5, F_ERROR = 6, F_BADKEY = 7;
const RC_INVALID = 1;
const C = kvshm.constants.errors;
const OK = 0, EEXIST = C.EEXIST, ENOTFOUND = C.ENOTFOUND;

const argv = process.argv.slice(2);
if (argv.length !== 11) {
  console.error('usage: node worker.js NAME WRITER INC ROUND NWRITERS NOWN NSTABLE NCTR JOURNAL SEED WALK_MS');
  process.exit(2);
}
const [name] = argv;
const [W, INC, ROUND, NW, NOWN, NSTABLE, NCTR] = argv.slice(1, 8).map(Number);
const journal = argv[8];
const WALK_US = Number(argv[10]) * 1000; // a walk every WALK_MS on average (0: never)

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
let printed = 0;
function say(msg) {
  if (printed++ < 20) console.error(`torture: Node writer ${W} inc ${INC}: ${msg}`);
}

// ---- journal ------------------------------------------------------------
const fd = fs.openSync(journal, 'a', 0o600);
const CAP = 256;
const jbuf = Buffer.alloc(32 * CAP);
let jn = 0;

function flush() {
  let off = 0;
  const end = jn * 32;
  while (off < end) off += fs.writeSync(fd, jbuf, off, end - off);
  jn = 0;
}

function writeU64(b, off, v) {
  b.writeUInt32LE(v % 4294967296, off);
  b.writeUInt32LE(Math.floor(v / 4294967296), off + 4);
}

function push(type, op, kind, idx, idx2, rc, seq) {
  if (jn === CAP) flush();
  const o = jn++ * 32;
  jbuf[o] = type; jbuf[o + 1] = op; jbuf[o + 2] = kind; jbuf[o + 3] = 1;
  jbuf.writeUInt32LE(idx >>> 0, o + 4);
  jbuf.writeUInt32LE(idx2 >>> 0, o + 8);
  jbuf.writeInt32LE(rc, o + 12);
  writeU64(jbuf, o + 16, seq);
  writeU64(jbuf, o + 24, nowUs());
}

// An operation starts: its INFLIGHT goes out now, with what was queued.
function begin(op, kind, idx, idx2, seq) {
  push(R_INFLIGHT, op, kind, idx, idx2, 0, seq);
  flush();
  return [op, kind, idx, idx2];
}
const ack = (r, rc, seq) => push(R_ACK, r[0], r[1], r[2], r[3], rc, seq);
const fail = (what, op, idx, idx2, seq) => push(R_FAIL, op, what, idx, idx2, 0, seq);

// ---- values -------------------------------------------------------------
function fnv1a(b, end) {
  let h = 0x811c9dc5;
  for (let i = 0; i < end; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

function payloadSize() {
  const p = Math.floor(Math.random() * 100);
  if (p < 85) return PAYLOAD_MIN + Math.floor(Math.random() * 191);
  if (p < 97) return 200 + Math.floor(Math.random() * (8192 - 200));
  return 8192 + Math.floor(Math.random() * (PAYLOAD_MAX - 8192 + 1));
}

function makeValue(key, writer, seq, payload) {
  const kb = Buffer.from(key, 'latin1');
  const len = TV_HDR + kb.length + payload + 4;
  const b = Buffer.allocUnsafe(len);
  b.writeUInt32LE(TV_MAGIC, 0);
  b.writeUInt32LE(len, 4);
  b.writeUInt32LE(writer, 8);
  b.writeUInt32LE(kb.length, 12);
  writeU64(b, 16, seq);
  kb.copy(b, TV_HDR);
  crypto.randomFillSync(b, TV_HDR + kb.length, payload);
  b.writeUInt32LE(fnv1a(b, len - 4), len - 4);
  return b;
}

// [failure or 0, why, seq]
function checkValue(v, key, wantWriter) {
  if (!Buffer.isBuffer(v)) return [F_FOREIGN, `not a Buffer value (${typeof v})`, 0];
  const len = v.length;
  if (len < TV_HDR + 4 + PAYLOAD_MIN) return [F_TORN, 'too short for a value', 0];
  if (v.readUInt32LE(0) !== TV_MAGIC) return [F_TORN, 'bad magic', 0];
  if (v.readUInt32LE(4) !== len) return [F_TORN, 'length field differs from the length read', 0];
  if (v.readUInt32LE(len - 4) !== fnv1a(v, len - 4)) return [F_TORN, 'checksum mismatch', 0];
  const writer = v.readUInt32LE(8);
  const klen = v.readUInt32LE(12);
  const seq = v.readUInt32LE(16) + v.readUInt32LE(20) * 4294967296;
  if (klen > len - TV_HDR - 4 - PAYLOAD_MIN) return [F_TORN, 'key length field out of range', seq];
  if (v.toString('latin1', TV_HDR, TV_HDR + klen) !== key) return [F_FOREIGN, 'value of another key', seq];
  if ((wantWriter >= 0 && writer !== wantWriter) || writer >= NW) return [F_FOREIGN, 'value of another writer', seq];
  if (seq === 0) return [F_FOREIGN, 'sequence number 0', seq];
  return [0, '', seq];
}

const isCounter = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0;

// ---- operations ---------------------------------------------------------
const cache = kvshm.open(name, { create: false });
let n = 0;
const nextSeq = () => INC * 4294967296 + ++n;
const ctrSeen = new Array(NCTR).fill(0);
const rnd = (k) => Math.floor(Math.random() * k);

function status(e) {
  if (e && typeof e.status === 'number' && e.status !== 0) return e.status;
  throw e; // not from libshm: a bug in this script
}

function unexpected(what, key, e, op, idx) {
  say(`${what} ${key} failed: ${e.code}: ${e.message}`);
  fail(F_ERROR, op, idx, 0, 0);
}

function pickOwn() {
  const hot = Math.max(1, Math.floor(NOWN / 8));
  return Math.random() < 0.5 ? rnd(hot) : rnd(NOWN);
}

function doSet(op, kind, j) {
  const key = `${kind === K_OWN ? 'k' : 's'}.${W}.${j}`;
  const seq = nextSeq();
  const v = makeValue(key, W, seq, payloadSize());
  const r = begin(op, kind, j, 0, seq);
  let rc;
  try {
    const stored = op === OP_SET ? cache.set(key, v)
      : cache.set(key, v, op === OP_SETNX ? { nx: true } : { xx: true });
    rc = stored ? OK : op === OP_SETNX ? EEXIST : ENOTFOUND;
  } catch (e) {
    rc = status(e);
    ack(r, rc, seq);
    unexpected('set', key, e, op, j);
    return;
  }
  ack(r, rc, seq);
}

function doDel(j) {
  const key = `k.${W}.${j}`;
  const r = begin(OP_DEL, K_OWN, j, 0, 0);
  try {
    ack(r, cache.delete(key) ? OK : ENOTFOUND, 0);
  } catch (e) {
    ack(r, status(e), 0);
    unexpected('delete', key, e, OP_DEL, j);
  }
}

function pickCounter() {
  if (Math.random() < 0.8) return (Math.floor(nowUs() / 300000) * 5 + rnd(2)) % NCTR;
  return rnd(NCTR);
}

function doIncr() {
  const i = pickCounter();
  const key = `c.${ROUND}.${i}`;
  const r = begin(OP_INCR, K_CTR, i, 0, 0);
  let v;
  try {
    v = cache.incr(key);
  } catch (e) {
    ack(r, status(e), 0);
    unexpected('incr', key, e, OP_INCR, i);
    return;
  }
  ack(r, OK, v);
  if (v <= ctrSeen[i]) {
    say(`incr ${key} returned ${v}, but this process saw ${ctrSeen[i]} before`);
    fail(F_CTR_REGRESS, OP_INCR, i, 0, v);
  }
  ctrSeen[i] = v; // after a fall, count the next fall only
}

function doClaim() {
  let epoch = Math.floor(nowUs() / 200000);
  if (Math.random() < 0.2) epoch -= 1 + rnd(100);
  const x = rnd(4);
  const key = `n.${ROUND}.${epoch}.${x}`;
  const seq = nextSeq();
  const v = makeValue(key, W, seq, PAYLOAD_MIN + rnd(100));
  const r = begin(OP_CLAIM, K_CLAIM, x, epoch, seq);
  try {
    ack(r, cache.set(key, v, { nx: true }) ? OK : EEXIST, seq);
  } catch (e) {
    ack(r, status(e), seq);
    unexpected('claim', key, e, OP_CLAIM, x);
  }
}

function doGet(kind, w, j, epoch) {
  const key = kind === K_CTR ? `c.${ROUND}.${j}`
    : kind === K_CLAIM ? `n.${ROUND}.${epoch}.${j}`
      : `${kind === K_OWN ? 'k' : 's'}.${w}.${j}`;
  const mine = (kind === K_OWN || kind === K_STABLE) && w === W;
  const r = begin(OP_GET, mine ? kind : K_OTHER, j, w, 0);
  let v;
  try {
    v = cache.get(key);
  } catch (e) {
    ack(r, status(e), 0);
    unexpected('get', key, e, OP_GET, j);
    return;
  }
  if (v === undefined) {
    ack(r, ENOTFOUND, 0);
    return;
  }
  let bad = 0, why = '', seq = 0;
  if (kind === K_CTR) {
    if (!isCounter(v)) {
      bad = F_TORN;
      why = `not a counter (${typeof v})`;
    } else {
      if (v < ctrSeen[j]) {
        say(`get ${key} = ${v}, but this process saw ${ctrSeen[j]} before`);
        fail(F_CTR_REGRESS, OP_GET, j, 0, v);
      }
      ctrSeen[j] = v;
    }
  } else {
    [bad, why, seq] = checkValue(v, key, kind === K_CLAIM ? -1 : w);
  }
  if (bad) {
    say(`get ${key}: ${why}`);
    ack(r, RC_INVALID, 0);
    fail(bad, OP_GET, j, w, seq);
    return;
  }
  ack(r, OK, seq);
}

// Parse a key: [kind, a, b, c] or null.
function parseKey(k) {
  let m = /^([ksc])\.(\d+)\.(\d+)$/.exec(k);
  if (m) return [m[1] === 'k' ? K_OWN : m[1] === 's' ? K_STABLE : K_CTR, +m[2], +m[3], 0];
  m = /^n\.(\d+)\.(\d+)\.(\d+)$/.exec(k);
  return m ? [K_CLAIM, +m[1], +m[2], +m[3]] : null;
}

// A walk over both tiers; the same checks as worker.c's do_walk.
function doWalk() {
  const r = begin(OP_WALK, 0, 0, 0, 0);
  const stableSeen = new Uint8Array(NW * NSTABLE);
  const ownSeen = new Uint8Array(NOWN);
  let entries = 0;
  try {
    for (const [k, v] of cache.entries()) {
      entries++;
      const p = parseKey(k);
      if (!p || ((p[0] === K_OWN || p[0] === K_STABLE) && p[1] >= NW) ||
          (p[0] === K_OWN && p[2] >= NOWN) || (p[0] === K_STABLE && p[2] >= NSTABLE)) {
        say(`walk returned key '${k}' that nobody writes`);
        fail(F_BADKEY, OP_WALK, 0, 0, 0);
        continue;
      }
      const [kind, a, b] = p;
      let bad = 0, why = '', seq = 0;
      if (kind === K_CTR) {
        if (!isCounter(v)) { bad = F_TORN; why = 'not a counter'; }
      } else {
        [bad, why, seq] = checkValue(v, k, kind === K_CLAIM ? -1 : a);
      }
      if (bad) {
        say(`walk: ${k}: ${why}`);
        fail(bad, OP_WALK, 0, 0, seq);
        continue;
      }
      if (kind === K_STABLE) {
        if (stableSeen[a * NSTABLE + b] === 1) {
          say(`walk returned stable key ${k} twice`);
          fail(F_WALK_DUP, OP_WALK, b, a, seq);
        }
        if (stableSeen[a * NSTABLE + b] < 255) stableSeen[a * NSTABLE + b]++;
      } else if (kind === K_OWN && a === W) {
        if (ownSeen[b] === 1) {
          say(`walk returned own key ${k} twice`);
          fail(F_WALK_DUP, OP_WALK, b, a, seq);
        }
        if (ownSeen[b] < 255) ownSeen[b]++;
      }
      if ((kind === K_OWN || kind === K_STABLE) && a === W) push(R_SEE, OP_WALK, kind, b, a, 0, seq);
    }
  } catch (e) {
    ack(r, status(e), entries);
    unexpected('walk', '', e, OP_WALK, 0);
    return;
  }
  for (let i = 0; i < stableSeen.length; i++) {
    if (stableSeen[i]) continue;
    say(`walk did not return stable key s.${Math.floor(i / NSTABLE)}.${i % NSTABLE}`);
    fail(F_WALK_MISSING, OP_WALK, i % NSTABLE, Math.floor(i / NSTABLE), 0);
  }
  ack(r, OK, entries);
}

// How fast the driver wants us to go: microseconds between operations in
// the file `pace` next to the journal (0 or missing: flat out), read every
// 100 ms.
const pacePath = path.join(path.dirname(journal), 'pace');
const sleeper = new Int32Array(new SharedArrayBuffer(4));
let paceUs = 0, paceRead = 0;
function pace() {
  const now = nowUs();
  if (now - paceRead >= 100000) {
    paceRead = now;
    try {
      paceUs = parseInt(fs.readFileSync(pacePath, 'latin1'), 10) || 0;
    } catch {
      paceUs = 0;
    }
  }
  if (paceUs) Atomics.wait(sleeper, 0, 0, paceUs / 1000);
}

let nextWalk = WALK_US ? nowUs() + WALK_US / 2 + rnd(WALK_US + 1) : Infinity;
for (;;) {
  pace();
  if (nowUs() >= nextWalk) {
    doWalk();
    nextWalk = nowUs() + WALK_US / 2 + rnd(WALK_US + 1);
  }
  const p = rnd(100);
  if (p < 24) doSet(OP_SET, K_OWN, pickOwn());
  else if (p < 31) doSet(OP_SETNX, K_OWN, pickOwn());
  else if (p < 38) doSet(OP_SETXX, K_OWN, pickOwn());
  else if (p < 46) doDel(pickOwn());
  else if (p < 51) doSet(Math.random() < 0.5 ? OP_SETXX : OP_SET, K_STABLE, rnd(NSTABLE));
  else if (p < 65) doIncr();
  else if (p < 70) doClaim();
  else if (p < 78) doGet(K_OWN, W, pickOwn(), 0);
  else if (p < 82) doGet(K_STABLE, W, rnd(NSTABLE), 0);
  else if (p < 85) doGet(K_CTR, 0, pickCounter(), 0);
  else if (p < 88) doGet(K_CLAIM, 0, rnd(4), Math.floor(nowUs() / 200000) - rnd(20));
  else if (Math.random() < 0.5) doGet(K_OWN, rnd(NW), rnd(NOWN), 0);
  else doGet(K_STABLE, rnd(NW), rnd(NSTABLE), 0);
}
