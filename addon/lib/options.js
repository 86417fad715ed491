// options.js - argument checking done in JS before native code runs, in
// the spirit of better-sqlite3's lib/database.js: a wrong type is a
// TypeError, a number out of range a RangeError that states the limits.
'use strict';
const { constants: C } = require('./binding');

const MIN_MEMORY = 1 << 20;
const MAX_MEMORY = Number.MAX_SAFE_INTEGER;
const MAX_TTL = Number.MAX_SAFE_INTEGER;
const MAX_U32 = 0xffffffff;

function typeError(msg) {
  const e = new TypeError(msg);
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

function rangeError(msg) {
  const e = new RangeError(msg);
  e.code = 'ERR_OUT_OF_RANGE';
  return e;
}

function describe(v) {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an instance of ${v.constructor ? v.constructor.name : 'Object'}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'symbol' || typeof v === 'function') return `a ${typeof v}`;
  return `${typeof v} ${String(v)}`;
}

function keyTypeError(key) {
  return typeError(`key must be a string, got ${describe(key)}`);
}

// A whole number in [min, max], else TypeError / RangeError naming `what`.
function integer(v, what, min, max, unit = '') {
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw typeError(`${what} must be a number${unit ? ` of ${unit}` : ''}, got ${describe(v)}`);
  }
  if (!Number.isInteger(v) || v < min || v > max) {
    throw rangeError(`${what} must be a whole number from ${min} to ${max}${unit ? ` ${unit}` : ''}, got ${v}`);
  }
  return v;
}

function boolean(v, what) {
  if (typeof v !== 'boolean') throw typeError(`${what} must be a boolean, got ${describe(v)}`);
  return v;
}

const UNITS = {
  '': 1, b: 1,
  k: 2 ** 10, kb: 2 ** 10, kib: 2 ** 10,
  m: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20,
  g: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30,
  t: 2 ** 40, tb: 2 ** 40, tib: 2 ** 40,
};

/**
 * Bytes from a number or a string like '256mb', '1.5 GiB', '4096'.
 * Units are binary: kb = 1024 bytes, mb = 1024 kb, ...
 */
function parseSize(v, what = 'memory') {
  let bytes;
  if (typeof v === 'number') {
    bytes = v;
  } else if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
    const unit = m && UNITS[m[2].toLowerCase()];
    if (!unit) {
      throw typeError(`${what} must be a number of bytes or a string like ` +
        `'256mb' (units b, kb, mb, gb, tb; 1kb = 1024 bytes), got ${describe(v)}`);
    }
    bytes = Math.floor(Number(m[1]) * unit);
  } else {
    throw typeError(`${what} must be a number of bytes or a string like '256mb', got ${describe(v)}`);
  }
  if (!Number.isInteger(bytes) || bytes < MIN_MEMORY || bytes > MAX_MEMORY) {
    throw rangeError(`${what} must be from 1mb (${MIN_MEMORY} bytes) to ` +
      `${MAX_MEMORY} bytes, got ${typeof v === 'string' ? `'${v}' = ` : ''}${bytes}`);
  }
  return bytes;
}

const NAME_RE = /^[A-Za-z0-9._-]+$/;

function checkName(name) {
  if (typeof name !== 'string') throw typeError(`cache name must be a string, got ${describe(name)}`);
  if (name.length < 1 || name.length > C.NAME_MAX) {
    throw rangeError(`cache name must be 1 to ${C.NAME_MAX} characters long, got ${name.length}`);
  }
  if (!NAME_RE.test(name) || name === '.' || name === '..') {
    throw typeError(`cache name ${JSON.stringify(name)} is not allowed: use ` +
      'A-Z a-z 0-9 . _ - (it names the file /dev/shm/kvshm.<name>), and not "." or ".."');
  }
  return name;
}

const OPEN_OPTIONS = ['memory', 'slotSize', 'stripes', 'defaultTtl', 'mode',
  'lockTimeout', 'sqlite', 'persistent', 'flushDelay', 'readonly', 'create',
  'reaper', 'trustUid', 'trustGid'];

function checkKnown(options, known, what) {
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) {
      throw typeError(`unknown ${what} option '${k}' (known: ${known.join(', ')})`);
    }
  }
}

function plainObject(v, what) {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw typeError(`${what} must be an object, got ${describe(v)}`);
  }
  return v;
}

/**
 * open()'s options to the native config object and open flags.
 * Absent options stay absent: libshm then uses its default when creating
 * and whatever the segment has when attaching.
 */
function openOptions(options) {
  const o = plainObject(options, 'options');
  checkKnown(o, OPEN_OPTIONS, 'open');
  const cfg = {};
  let flags = 0;
  if (o.memory !== undefined) cfg.memory = parseSize(o.memory, 'memory');
  if (o.slotSize !== undefined) {
    integer(o.slotSize, 'slotSize', C.MIN_SLOT, C.MAX_SLOT, 'bytes');
    if (o.slotSize % 8) throw rangeError(`slotSize must be a multiple of 8 from ${C.MIN_SLOT} to ${C.MAX_SLOT} bytes, got ${o.slotSize}`);
    cfg.slotSize = o.slotSize;
  }
  if (o.stripes !== undefined) {
    integer(o.stripes, 'stripes', 1, C.MAX_STRIPES);
    if (o.stripes & (o.stripes - 1)) throw rangeError(`stripes must be a power of two from 1 to ${C.MAX_STRIPES}, got ${o.stripes}`);
    cfg.stripes = o.stripes;
  }
  if (o.defaultTtl !== undefined) cfg.defaultTtl = integer(o.defaultTtl, 'defaultTtl', 0, MAX_TTL, 'ms');
  if (o.mode !== undefined) {
    let mode = o.mode;
    if (typeof mode === 'string' && /^0?o?[0-7]{1,3}$/.test(mode)) mode = parseInt(mode.replace(/^0?o?/, ''), 8);
    cfg.mode = integer(mode, 'mode', 1, 0o777, '(permission bits, e.g. 0o600)');
  }
  if (o.lockTimeout !== undefined) cfg.lockTimeout = integer(o.lockTimeout, 'lockTimeout', 1, MAX_U32, 'ms');
  if (o.sqlite !== undefined && o.sqlite !== null) {
    if (typeof o.sqlite !== 'string') throw typeError(`sqlite must be a file path string, got ${describe(o.sqlite)}`);
    if (o.sqlite === '' || o.sqlite.includes('\0')) throw typeError('sqlite must be a non-empty file path without NUL bytes');
    if (Buffer.byteLength(o.sqlite) > C.PATH_MAX) throw rangeError(`sqlite path must be at most ${C.PATH_MAX} bytes`);
    cfg.sqlite = o.sqlite;
  }
  if (o.persistent !== undefined) {
    cfg.persistent = boolean(o.persistent, 'persistent') ? 1 : 0;
    if (cfg.persistent && cfg.sqlite === undefined) throw typeError('persistent: true needs a sqlite file to persist to');
  }
  if (o.flushDelay !== undefined) {
    cfg.flushDelay = integer(o.flushDelay, 'flushDelay', 1, C.MAX_FLUSH_DELAY, 'ms');
    if (cfg.sqlite === undefined) throw typeError('flushDelay needs a sqlite file: it bounds how long a write waits to reach it');
  }
  // Another user's files are refused (EOWNER) unless their owner or group
  // is trusted here.
  cfg.trust = 0;
  if (o.trustUid !== undefined) {
    cfg.trustUid = integer(o.trustUid, 'trustUid', 0, MAX_U32 - 1, '(a uid)');
    cfg.trust |= 1;
  }
  if (o.trustGid !== undefined) {
    cfg.trustGid = integer(o.trustGid, 'trustGid', 0, MAX_U32 - 1, '(a gid)');
    cfg.trust |= 2;
  }
  if (o.readonly !== undefined && boolean(o.readonly, 'readonly')) flags |= C.RDONLY;
  if (o.create !== undefined && !boolean(o.create, 'create')) flags |= C.NOCREATE;
  if (o.reaper !== undefined && !boolean(o.reaper, 'reaper')) flags |= C.NOREAPER;
  return { cfg, flags };
}

const SET_OPTIONS = ['ttl', 'nx', 'xx', 'keepTtl'];

// setOptions' result, reused so that a set with options allocates nothing.
const parsedSet = { ttl: 0, opts: 0 };

/** set()'s options to { ttl, opts } for the native call (reused object). */
function setOptions(options) {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw typeError(`set options must be an object like { ttl: 1000 }, got ${describe(options)}`);
  }
  let ttl = C.TTL_DEFAULT;
  let opts = 0;
  for (const k in options) {
    const v = options[k];
    if (v === undefined) continue;
    switch (k) {
      case 'ttl': ttl = integer(v, 'ttl', 0, MAX_TTL, 'ms (0 = never expires)'); break;
      case 'nx': if (boolean(v, 'nx')) opts |= C.NX; break;
      case 'xx': if (boolean(v, 'xx')) opts |= C.XX; break;
      case 'keepTtl': if (boolean(v, 'keepTtl')) opts |= C.KEEPTTL; break;
      default: throw typeError(`unknown set option '${k}' (known: ${SET_OPTIONS.join(', ')})`);
    }
  }
  if ((opts & (C.NX | C.XX)) === (C.NX | C.XX)) throw typeError('set options nx and xx exclude each other');
  parsedSet.ttl = ttl;
  parsedSet.opts = opts;
  return parsedSet;
}

function iterOptions(options) {
  const o = plainObject(options, 'iteration options');
  checkKnown(o, ['prefix'], 'iteration');
  if (o.prefix !== undefined && typeof o.prefix !== 'string') {
    throw typeError(`prefix must be a string, got ${describe(o.prefix)}`);
  }
  return o.prefix === '' ? undefined : o.prefix;
}

module.exports = {
  typeError, rangeError, describe, keyTypeError, integer, parseSize,
  checkName, openOptions, setOptions, iterOptions, MIN_MEMORY, MAX_TTL,
};
