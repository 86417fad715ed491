// shared.js - one native handle per cache name in this process, shared by
// every kvshm/keyv store over that name and closed when the last of them
// disconnects.  A handle maps the whole segment and may hold a SQLite read
// connection; Keyv users create a store per namespace (and @keyv/test-suite
// one per test), so a handle each would map the same segment dozens of
// times.
'use strict';
const binding = require('./binding');
const { Cache } = require('./cache');
const { KvshmError } = require('./errors');
const { openOptions } = require('./options');

const { RDONLY, NOCREATE } = binding.constants;

// name -> { cache, config, flags, refs }
const handles = new Map();

/**
 * A handle on the cache `name`, opened with `options` unless this process
 * has one already.  Options are checked as open() checks them (TypeError,
 * RangeError).  Options that differ from those of the open handle are
 * tried against the segment with a second open: kvshm then throws its own
 * ECONFIG naming the option that differs.  Options it accepts (an omitted
 * memory, another lockTimeout) share the open handle; readonly must agree,
 * since a read-only store must not share a writable handle nor the reverse.
 */
function acquire(name, options) {
  const { cfg, flags: f } = openOptions(options);
  const config = JSON.stringify(cfg);
  const flags = f & ~NOCREATE; // create: false is met once the cache is open
  const held = handles.get(name);
  if (held && !held.cache.closed) {
    if (held.config !== config || held.flags !== flags) {
      new Cache(name, options).close();
      if ((held.flags & RDONLY) !== (flags & RDONLY)) {
        throw new KvshmError(`cache '${name}' is already open in this process ` +
          `${held.flags & RDONLY ? 'read-only' : 'writable'} by another kvshm/keyv store, ` +
          'and stores over one name share one handle: give them the same readonly option', 'ECONFIG', 0);
      }
    }
    held.refs++;
    return held;
  }
  const entry = { cache: new Cache(name, options), config, flags, refs: 1 };
  handles.set(name, entry);
  return entry;
}

/** Drop one reference; the last one closes the handle. */
function release(entry) {
  if (--entry.refs > 0) return;
  if (handles.get(entry.cache.name) === entry) handles.delete(entry.cache.name);
  entry.cache.close();
}

/** How many stores share the handle on `name` (0: none open); for tests. */
function refs(name) {
  const held = handles.get(name);
  return held && !held.cache.closed ? held.refs : 0;
}

module.exports = { acquire, release, refs };
