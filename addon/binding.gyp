# binding.gyp - the kvshm addon: the glue in src/ plus every libshm source
# and SQLite (deps/sqlite), compiled into one kvshm.node (as lmdb-js
# compiles LMDB's C sources in), and the two programs that ship beside it:
# kvshm-reaper, which libshm starts for each cache (it finds it beside the
# addon), and kvshm-cli.  Nothing is linked from the system but libc.
#
# The libshm and CLI file lists are read when gyp runs, so a new file needs
# no edit here.  `-Dkvshm_werror=1` (the repo's Makefile) makes our own
# warnings errors; a build from source on install keeps them warnings.
{
  'variables': {
    'kvshm_werror%': 0,
    'libshm_sources': [
      '<!@(node -p "require(\'fs\').readdirSync(\'../libshm\').filter(f => f.endsWith(\'.c\')).sort().map(f => \'../libshm/\' + f).join(\' \')")',
    ],
    'cli_sources': [
      '<!@(node -p "require(\'fs\').readdirSync(\'../tools\').filter(f => /^(kvshm-cli|cli_.*)\\.c$/.test(f)).sort().map(f => \'../tools/\' + f).join(\' \')")',
    ],
    # deps/sqlite/options.txt: one define per line, # comments.
    'sqlite_defines': [
      '<!@(node -p "require(\'fs\').readFileSync(\'../deps/sqlite/options.txt\', \'utf8\').split(\'\\n\').map(l => l.replace(/#.*/, \'\').trim()).filter(Boolean).join(\' \')")',
    ],
  },
  'target_defaults': {
    'include_dirs': ['../libshm', '../deps/sqlite'],
    'defines': ['KVSHM_BUILDING', '_GNU_SOURCE'],
    'cflags': [
      '-std=c11', '-fvisibility=hidden',
      '-Wall', '-Wextra', '-Wshadow', '-Wvla', '-Wstrict-prototypes',
    ],
    'libraries': ['-lpthread', '-lrt', '-lm'],
  },
  'targets': [
    {
      # SQLite, its symbols hidden inside whatever links it, so that it
      # never meets another SQLite in the same process.
      'target_name': 'sqlite3',
      'type': 'static_library',
      'sources': ['../deps/sqlite/sqlite3.c'],
      'defines': ['<@(sqlite_defines)'],
      'cflags!': ['-std=c11', '-Wall', '-Wextra', '-Wshadow', '-Wvla',
                  '-Wstrict-prototypes'],
      'cflags': ['-w'],
    },
    {
      # libshm once, for the addon and both programs.  Its warnings are the
      # top Makefile's business (-Werror at -O2 there); node-gyp builds at
      # -O3, where gcc 12 warns about more.
      'target_name': 'libshm',
      'type': 'static_library',
      'dependencies': ['sqlite3'],
      'sources': ['<@(libshm_sources)'],
    },
    {
      'target_name': 'kvshm',
      'dependencies': ['libshm', 'sqlite3'],
      'sources': [
        'src/addon.c',
        'src/cache.c',
        'src/iter.c',
        'src/many.c',
        'src/near.c',
        'src/utf.c',
        'src/value.c',
      ],
      'conditions': [
        ['kvshm_werror==1', {'cflags': ['-Werror']}],
      ],
    },
    {
      'target_name': 'kvshm-reaper',
      'type': 'executable',
      'dependencies': ['libshm', 'sqlite3'],
      'sources': ['../tools/kvshm-reaper.c'],
    },
    {
      'target_name': 'kvshm-cli',
      'type': 'executable',
      'dependencies': ['libshm', 'sqlite3'],
      'sources': ['<@(cli_sources)'],
    },
  ],
}
