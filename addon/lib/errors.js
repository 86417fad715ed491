// errors.js - KvshmError, the error every libshm failure becomes: `.code` is
// the status's name ('ECONFIG', 'ETIMEDOUT', 'ENOENT', ...), `.status` the
// numeric status, and the message says what went wrong and what to do.
'use strict';

// libshm names the C configuration fields; users passed JS options.
const OPTION_NAMES = {
  memory_size: 'memory',
  slot_size: 'slotSize',
  stripes: 'stripes',
  default_ttl_ms: 'defaultTtl',
  persistent: 'persistent',
  flush_delay_ms: 'flushDelay',
  sqlite_path: 'sqlite',
  lock_timeout_ms: 'lockTimeout',
  mode: 'mode',
};

// What to do, for codes whose libshm message does not already say.
const HINTS = {
  ENOTINT: 'incr() and decr() work on integers: a number stored with ' +
    'set(key, 42), a key created by incr(), or decimal text',
  EOVERFLOW: 'the result must stay within a signed 64-bit integer',
  ETIMEDOUT: 'another process or thread held that lock for the whole ' +
    'lockTimeout: it may be stopped (SIGSTOP, a debugger) or stuck; find it, ' +
    'or open the cache with a longer lockTimeout',
  ERDONLY: 'the cache was opened with readonly: true; open it without that ' +
    'option to write (a read-only handle without write permission on the ' +
    'segment cannot walk keys either)',
  ENOENT: 'the cache does not exist yet and create: false was given; open ' +
    'it without create: false to create it',
  EACCES: 'the segment in /dev/shm belongs to another user or its mode ' +
    'forbids you: run as the same user, or create it with a wider mode',
  EBADMAGIC: 'a file of that name in /dev/shm is not a kvshm cache: choose ' +
    'another name or remove the file',
  ESQLITE: 'check that the sqlite file\'s directory exists and is writable',
  EBADDB: 'point the sqlite option at a kvshm store or at a new file',
  ECLOSED: 'open it again with open(name)',
  EREAPER: 'the kvshm-reaper program must be installed next to the library',
};

class KvshmError extends Error {
  /**
   * @param {string} message libshm's detail for the failed call
   * @param {string} code the status's name, e.g. 'ECONFIG'
   * @param {number} status the numeric status (0 for JS-side errors)
   */
  constructor(message, code, status) {
    let msg = String(message);
    let option;
    if (code === 'ECONFIG' || code === 'EINVAL') {
      msg = msg.replace(/\b(memory_size|slot_size|stripes|default_ttl_ms|persistent|flush_delay_ms|sqlite_path|lock_timeout_ms|mode)\b/g,
        (m) => {
          option = option || OPTION_NAMES[m];
          return OPTION_NAMES[m];
        });
      msg = msg.replace('pass 0 (or omit it)', 'omit the option');
    }
    const hint = HINTS[code];
    if (hint) msg = `${msg.replace(/[.\s]+$/, '')}: ${hint}`;
    super(msg);
    this.name = 'KvshmError';
    this.code = code;
    this.status = status | 0;
    if (option) this.option = option;
  }
}

module.exports = { KvshmError };
