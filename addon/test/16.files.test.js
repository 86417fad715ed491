// 16.files: the files a SQLite-backed cache makes beside its segment, as
// another local user would find them: the cache's mode whatever the umask,
// and no symlink followed at the SQLite file or the reaper's log
// (tests/check_security.c covers other owners, setuid and damage).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { kvshm, uniqueName, freshCache, tmpDir, sleep } = require('./helpers');
const { open, KvshmError } = kvshm;

const modeOf = (file) => fs.lstatSync(file).mode & 0o777;

/** Wait until the reaper has written everything behind. */
async function written(c) {
  for (let i = 0; i < 500 && c.stats().dirty > 0; i++) await sleep(20);
  assert.equal(c.stats().dirty, 0, 'the reaper wrote nothing behind');
}

test('under umask 022 the SQLite files and the reaper log get the cache mode', async (t) => {
  const old = process.umask(0o022);
  t.after(() => process.umask(old));
  const dir = tmpDir(t);
  for (const [mode, want] of [[undefined, 0o600], [0o640, 0o640]]) {
    const file = path.join(dir, `mode-${want.toString(8)}.db`);
    const c = freshCache(t, { memory: '4mb', sqlite: file, mode });
    c.set('k', 'v');
    await written(c); // the reaper runs: its log exists
    c.flush(); // this process's connection keeps -wal and -shm open
    for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}.reaper.log`]) {
      assert.equal(modeOf(f).toString(8), want.toString(8), `${path.basename(f)}'s mode`);
    }
  }
});

test('a symlink at the sqlite path is refused with EOWNER, its target untouched', (t) => {
  const dir = tmpDir(t);
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious\n');
  const link = path.join(dir, 'link.db');
  fs.symlinkSync(victim, link);
  assert.throws(() => open(uniqueName('link'), { memory: '4mb', sqlite: link }),
    (err) => err instanceof KvshmError && err.code === 'EOWNER' && /symbolic link/.test(err.message));
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
  assert.ok(fs.lstatSync(link).isSymbolicLink());
});

test('a symlink at the reaper log is not followed', async (t) => {
  const dir = tmpDir(t);
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious\n');
  const file = path.join(dir, 'logged.db');
  fs.symlinkSync(victim, `${file}.reaper.log`);
  const c = freshCache(t, { memory: '4mb', sqlite: file });
  c.set('k', 'v');
  await written(c); // the reaper runs, without a log
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
  assert.ok(fs.lstatSync(`${file}.reaper.log`).isSymbolicLink());
});
