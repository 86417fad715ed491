// keyv-example.mts - the ESM side of kvshm/keyv: default and named imports.
import KeyvKvshm, { KeyvKvshm as Named, createKeyv } from 'kvshm/keyv';
import { Keyv } from 'keyv';

const keyv = new Keyv({ store: new KeyvKvshm('keyv-esm', { memory: '8mb' }) });
const other: KeyvKvshm = new Named('keyv-esm');
const fast: Keyv<number> = createKeyv<number>('keyv-esm', undefined, { namespace: 'n' });
await keyv.set('a', 1);
const n: number | undefined = await fast.get('a');
void [other, n];
