# binding.gyp - the kvshm addon: the glue in src/ plus every libshm source,
# compiled into one kvshm.node (as lmdb-js compiles LMDB's C sources in),
# and the kvshm-reaper program that libshm starts for each cache.
#
# The libshm file list is read from ../libshm when gyp runs, so a new libshm
# file needs no edit here.  `-Dkvshm_werror=1` (the repo's Makefile) makes
# the addon's own warnings errors; an install into another project keeps
# them warnings.
{
  'variables': {
    'kvshm_werror%': 0,
    'libshm_sources': [
      '<!@(node -p "require(\'fs\').readdirSync(\'../libshm\').filter(f => f.endsWith(\'.c\')).sort().map(f => \'../libshm/\' + f).join(\' \')")',
    ],
    'has_reaper': '<!(node -p "require(\'fs\').existsSync(\'../tools/kvshm-reaper.c\')")',
  },
  'target_defaults': {
    'include_dirs': ['../libshm'],
    # libshm starts this program (unless KVSHM_REAPER_PATH says otherwise).
    'defines': [
      'KVSHM_BUILDING',
      '_GNU_SOURCE',
      'KVSHM_REAPER_PATH="<(module_root_dir)/build/Release/kvshm-reaper"',
    ],
    'cflags': [
      '-std=c11', '-fvisibility=hidden',
      '-Wall', '-Wextra', '-Wshadow', '-Wvla', '-Wstrict-prototypes',
    ],
    'libraries': ['-lpthread', '-lrt', '-lsqlite3'],
  },
  'targets': [
    {
      # libshm once, for the addon and the reaper.  Its warnings are the
      # top Makefile's business (-Werror at -O2 there); node-gyp builds at
      # -O3, where gcc 12 warns about more.
      'target_name': 'libshm',
      'type': 'static_library',
      'sources': ['<@(libshm_sources)'],
    },
    {
      'target_name': 'kvshm',
      'dependencies': ['libshm'],
      'sources': [
        'src/addon.c',
        'src/cache.c',
        'src/iter.c',
        'src/utf.c',
        'src/value.c',
      ],
      'conditions': [
        ['kvshm_werror==1', {'cflags': ['-Werror']}],
      ],
    },
  ],
  'conditions': [
    ['has_reaper=="true"', {
      'targets': [
        {
          'target_name': 'kvshm-reaper',
          'type': 'executable',
          'dependencies': ['libshm'],
          'sources': ['../tools/kvshm-reaper.c'],
        },
      ],
    }],
  ],
}
