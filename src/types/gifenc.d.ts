// gifenc ships no type declarations; src/image/gif.ts narrows what it uses.
declare module 'gifenc';
