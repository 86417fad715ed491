// example.mts - the ESM side: default and named imports of both entries.
import kvshm, { open, KvshmError } from 'kvshm';
import facade, { insert, get } from 'kvshm/promise';

const cache = kvshm.open('esm-example', { memory: '8mb' });
const other = open('esm-example');
cache.set('k', 'v');
const v = other.get<string>('k');
const isError: boolean = new Error() instanceof KvshmError;
await facade.start({ name: 'esm-example' });
const i: 'I' = await insert('a', 1, 0);
const g = await get<number>('a');
const n: number | '' = g;
void [v, isError, i, n];
