// promise.mjs - ESM entry of the Promise facade.
import facade from './promise.js';

export const { start, insert, get, remove, close, DEFAULT_NAME } = facade;
export default facade;
